//! Fuzz what a replica reads from a bucket others can write (a published index
//! entry) and the `--store` location parser: never panic, and an accepted
//! entry names exactly the version asked for.
#![no_main]
use libfuzzer_sys::fuzz_target;
use modgate::protocol::{Kind, ModVersion};
use modgate::store::Location;
use modgate::store::s3::parse_published;

fuzz_target!(|data: &[u8]| {
    let Ok(mv) = ModVersion::new("example.com/m", "v1.0.0") else {
        return;
    };
    for kind in [Kind::Info, Kind::Mod, Kind::Zip] {
        if let Ok(e) = parse_published(data, &mv, kind, 1 << 20) {
            assert_eq!(e.module, "example.com/m");
            assert_eq!(e.version, "v1.0.0");
            assert_eq!(e.kind, kind.ext());
            assert!(e.size <= 1 << 20);
            assert_eq!(e.digest.len(), 64);
        }
    }
    if let Ok(s) = std::str::from_utf8(data)
        && let Ok(Location::S3 { bucket, prefix }) = s.parse::<Location>()
    {
        assert!(!bucket.is_empty() && !bucket.contains('/'));
        assert!(!prefix.starts_with('/') && !prefix.ends_with('/'));
    }
});
