//! Certificate serial numbers: 128 random bits, positive, and always 17 DER content octets.

use rand::RngCore;
use x509_cert::serial_number::SerialNumber;

/// A fresh random serial. The leading 0x01 keeps the INTEGER positive and minimally encoded whatever the random
/// bytes are, so every serial has the same length (RFC 5280 §4.1.2.2 allows up to 20 octets).
pub fn random_serial() -> SerialNumber {
    let mut bytes = [0u8; 17];
    bytes[0] = 0x01;
    rand::rngs::OsRng.fill_bytes(&mut bytes[1..]);
    // 17 octets with a non-zero, positive leading octet is always a valid serial.
    SerialNumber::new(&bytes).unwrap_or_else(|_| SerialNumber::from(1u32))
}

/// Lower-case hex of the serial's content octets, the form used in logs, file names and the inventory.
pub fn serial_hex(serial: &SerialNumber) -> String {
    hex::encode(serial.as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;
    use der::Encode;

    fn encoded_len(serial: &SerialNumber) -> usize {
        serial.to_der().map(|d| d.len()).unwrap_or(0)
    }

    #[test]
    fn serials_are_random_positive_and_17_octets() {
        let a = random_serial();
        let b = random_serial();
        assert_ne!(a, b);
        assert_eq!(a.as_bytes().len(), 17);
        assert_eq!(a.as_bytes()[0], 0x01);
        assert_eq!(encoded_len(&a), 19);
        assert_eq!(serial_hex(&a).len(), 34);
    }
}
