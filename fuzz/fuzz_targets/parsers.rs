#![no_main]
//! Every parser and checker of segment-reader over arbitrary bytes (see docs/FUZZING.md).

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    segment_reader::fuzz::exercise(data);
});
