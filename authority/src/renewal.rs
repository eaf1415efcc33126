//! When a certificate should be renewed: one rule for the renewal window this CA offers ACME clients (RFC 9773
//! renewalInfo) and for the certificates Castellan renews itself.

use castellan_store::inventory::{CertificateRecord, CertificateStatus};
use sha2::{Digest, Sha256};

const DAY: i64 = 86_400;

/// The window: centred at two thirds of the lifetime, a tenth of the lifetime wide; or, for a certificate that
/// was revoked or that an operator marked due, a window that has already begun, so clients renew at once.
pub fn renewal_window(certificate: &CertificateRecord, now: i64) -> (i64, i64) {
    let due_now =
        certificate.status == CertificateStatus::Revoked || certificate.renewal_due_at.is_some_and(|due| due <= now);
    if due_now {
        // RFC 9773 §4.2: a window in the past tells clients to renew immediately.
        let lifetime = (certificate.not_after - certificate.not_before).max(1);
        let start = now - lifetime / 10 - 1;
        return (start, now - 1);
    }
    scheduled_window(certificate.not_before, certificate.not_after)
}

/// The window of a certificate nobody asked to renew early.
pub fn scheduled_window(not_before: i64, not_after: i64) -> (i64, i64) {
    let lifetime = (not_after - not_before).max(1);
    let centre = not_before + lifetime * 2 / 3;
    let half_width = lifetime / 20;
    (centre - half_width, centre + half_width)
}

/// When Castellan renews a certificate it manages, given the issuer's window (its RFC 9773 renewalInfo, or
/// [`scheduled_window`]): a point inside it picked by `spread_key`, so that a thousand certificates issued together
/// renew spread over the window rather than at one instant; and never later than 30 days before expiry (31, so
/// the 30-day alert never races it) for a certificate that lives 90 days or longer, whatever the issuer suggests.
pub fn managed_renewal_at(not_before: i64, not_after: i64, window: (i64, i64), spread_key: &str) -> i64 {
    // The window is cut first and the point picked in what is left, so the spread survives the cut (picking
    // first and clamping would pile every late pick onto one instant).
    let latest = if not_after - not_before >= 90 * DAY { not_after - 31 * DAY } else { i64::MAX };
    let end = window.1.max(window.0).min(latest);
    let start = window.0.min(end);
    let digest = Sha256::digest(spread_key.as_bytes());
    let mut first = [0u8; 8];
    first.copy_from_slice(&digest[..8]);
    let fraction = u64::from_be_bytes(first) as f64 / u64::MAX as f64;
    start + ((end - start) as f64 * fraction) as i64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn managed_renewals_spread_over_the_window_and_respect_the_30_day_floor() {
        let (nb, na) = (1_000_000, 1_000_000 + 90 * DAY);
        let window = scheduled_window(nb, na);
        let times: Vec<i64> = (0..1000).map(|i| managed_renewal_at(nb, na, window, &format!("m{i}"))).collect();
        assert!(times.iter().all(|&t| t >= window.0 && t <= na - 31 * DAY), "{window:?}");
        let distinct: std::collections::HashSet<_> = times.iter().map(|t| t / 3600).collect();
        assert!(distinct.len() > 60, "a thousand renewals fall in {} distinct hours", distinct.len());
        let busiest = times.iter().filter(|&&t| t == na - 31 * DAY).count();
        assert!(busiest < 5, "{busiest} renewals piled onto the cut");
        // The same key gives the same time (a restart does not move it).
        assert_eq!(managed_renewal_at(nb, na, window, "m1"), times[1]);

        // A short certificate renews around two thirds of its life.
        let window = scheduled_window(0, 180);
        let at = managed_renewal_at(0, 180, window, "short");
        assert!((111..=129).contains(&at), "{at}");
        // An issuer's window late in the life of a long certificate is cut at 30 days before expiry.
        assert_eq!(managed_renewal_at(nb, na, (na - 5 * DAY, na - DAY), "late"), na - 31 * DAY);
    }
}
