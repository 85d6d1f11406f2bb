//! Untrusted bytes never panic, and a file gives the same findings whether it is mapped, streamed
//! with positioned reads, or already in memory.

use std::fs;
use std::path::{Path, PathBuf};

use segment_reader::fuzz::{exercise, exercise_source};
use segment_reader::source::Source;

struct XorShift(u64);
impl XorShift {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

fn sample_logs() -> Vec<PathBuf> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../testdata/data/logs");
    let mut v = Vec::new();
    for d in fs::read_dir(root)
        .unwrap()
        .flatten()
        .filter(|d| d.path().is_dir())
    {
        for f in fs::read_dir(d.path()).unwrap().flatten() {
            let p = f.path();
            if p.extension()
                .is_some_and(|x| x == "log" || x == "checkpoint")
            {
                v.push(p);
            }
        }
    }
    v.sort();
    v
}

#[test]
fn random_bytes_never_panic() {
    let mut rng = XorShift(0x9e37_79b9_7f4a_7c15);
    for _ in 0..3000 {
        let len = rng.below(2048);
        let data: Vec<u8> = (0..len).map(|_| rng.next() as u8).collect();
        exercise(&data);
    }
}

#[test]
fn mutated_logs_never_panic_and_every_source_agrees() {
    let mut rng = XorShift(42);
    let tmp = tempfile::tempdir().unwrap();
    let logs = sample_logs();
    assert!(logs.len() >= 20, "the committed sample logs are here");
    for (i, log) in logs.iter().enumerate() {
        let clean = fs::read(log).unwrap();
        for round in 0..12 {
            let mut data = clean.clone();
            match round % 4 {
                0 => {
                    for _ in 0..1 + rng.below(4) {
                        let at = rng.below(data.len());
                        data[at] ^= 1 << rng.below(8);
                    }
                }
                1 => data.truncate(rng.below(data.len())),
                2 => {
                    let a = rng.below(data.len());
                    let b = (a + rng.below(600)).min(data.len());
                    data[a..b].fill(0);
                }
                _ => {
                    let at = rng.below(data.len());
                    let junk: Vec<u8> = (0..rng.below(100)).map(|_| rng.next() as u8).collect();
                    data.splice(at..at, junk);
                }
            }
            exercise(&data);
            let path = tmp.path().join(format!("{i}-{round}.log"));
            fs::write(&path, &data).unwrap();
            for tail in [false, true] {
                let mem = exercise_source(&data, &mut Source::Memory(data.clone()), tail);
                let mapped = exercise_source(&data, &mut Source::map(&path).unwrap(), tail);
                let streamed = exercise_source(&data, &mut Source::stream(&path).unwrap(), tail);
                assert_eq!(mem, mapped, "{} round {round}", log.display());
                assert_eq!(mem, streamed, "{} round {round}", log.display());
            }
        }
    }
}

#[test]
fn empty_files_are_fine_everywhere() {
    let tmp = tempfile::tempdir().unwrap();
    let p = tmp.path().join("00000000000000000000.log");
    fs::write(&p, b"").unwrap();
    assert!(exercise_source(&[], &mut Source::map(&p).unwrap(), true).is_empty());
    assert!(exercise_source(&[], &mut Source::stream(&p).unwrap(), true).is_empty());
}
