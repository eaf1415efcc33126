//! Challenge validation (the VA).
