//! `h1:` hashes of module zips and go.mod files, and the module-zip rules (x/mod `zip`, `dirhash`).
