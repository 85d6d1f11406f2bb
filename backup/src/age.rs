//! `drkit backup age`: is the newest backup of each class young enough?
//!
//! One listing, through `object_store`, of a local directory or an S3 prefix; every object's
//! modification time (file mtime, S3 `LastModified`) is all that is read. Objects are sorted into
//! classes: `--class NAME=AGE:GLOB` takes the keys (relative to the listed directory or prefix,
//! `/`-separated) matching GLOB (`*` stays within one path component, `**` crosses them);
//! `--class NAME=AGE` without a glob takes the keys under `NAME/`. An object belongs to the first
//! class that matches it, in the order given; what no class takes is the default class, held to
//! `--max-age` when that is given. `.sha256` sidecars and dot files (uploads in progress) are no
//! backups and are skipped. The library never prints.

use std::sync::Arc;

use chrono::{DateTime, TimeDelta, Utc};
use futures::StreamExt;
use globset::{GlobBuilder, GlobMatcher};
use object_store::aws::{AmazonS3Builder, AmazonS3ConfigKey};
use object_store::local::LocalFileSystem;
use object_store::{path::Path as StorePath, ObjectStore};

/// The class objects fall into when no `--class` takes them.
pub const DEFAULT_CLASS: &str = "default";

/// A class of backups and how old its newest may be.
#[derive(Debug, Clone)]
pub struct Class {
    pub name: String,
    pub max_age: TimeDelta,
    /// The glob as given, or `NAME/**` when none was.
    pub pattern: String,
    matcher: Option<GlobMatcher>,
}

impl Class {
    /// `glob`: `None` means the keys under `NAME/`; the default class matches everything.
    pub fn new(name: &str, max_age: TimeDelta, glob: Option<&str>) -> Result<Class, String> {
        if name.is_empty() || name.contains('/') {
            return Err(format!(
                "class name {name:?} must be non-empty and without '/'"
            ));
        }
        let pattern = glob.map_or_else(|| format!("{name}/**"), str::to_string);
        let m = GlobBuilder::new(&pattern)
            .literal_separator(true)
            .build()
            .map_err(|e| format!("class {name}: glob {pattern:?}: {e}"))?
            .compile_matcher();
        Ok(Class {
            name: name.to_string(),
            max_age,
            pattern,
            matcher: Some(m),
        })
    }

    /// The class of everything no other class takes.
    pub fn default_class(max_age: TimeDelta) -> Class {
        Class {
            name: DEFAULT_CLASS.to_string(),
            max_age,
            pattern: "**".to_string(),
            matcher: None,
        }
    }

    fn matches(&self, key: &str) -> bool {
        match &self.matcher {
            None => true,
            Some(m) => m.is_match(key),
        }
    }
}

/// The newest object of one class.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Newest {
    pub key: String,
    pub modified: DateTime<Utc>,
    pub size: u64,
}

/// One class after the listing.
#[derive(Debug, Clone)]
pub struct ClassReport {
    pub class: Class,
    pub objects: u64,
    pub newest: Option<Newest>,
}

impl ClassReport {
    /// How old the newest object is at `now` (zero when its time is in the future).
    pub fn age(&self, now: DateTime<Utc>) -> Option<TimeDelta> {
        self.newest
            .as_ref()
            .map(|n| (now - n.modified).max(TimeDelta::zero()))
    }
    /// The class passes: it has an object, and the newest is at most `max_age` old.
    pub fn fresh(&self, now: DateTime<Utc>) -> bool {
        self.age(now).is_some_and(|a| a <= self.class.max_age)
    }
}

/// The store and prefix for a location: `s3://BUCKET/PREFIX` (the AWS_* environment, then
/// `settings` as object_store's S3 configuration keys) or a local directory (no settings).
/// Errors may quote setting values: scrub secrets before printing them.
pub fn open(
    location: &str,
    settings: &[(String, String)],
) -> Result<(Arc<dyn ObjectStore>, Option<StorePath>), String> {
    if let Some(rest) = location.strip_prefix("s3://") {
        let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
        if bucket.is_empty() {
            return Err(format!("{location}: no bucket"));
        }
        let mut b = AmazonS3Builder::from_env().with_bucket_name(bucket);
        for (k, v) in settings {
            let key: AmazonS3ConfigKey = k
                .parse()
                .map_err(|_| format!("-X {k}: not an S3 setting object_store knows"))?;
            b = b.with_config(key, v);
        }
        let s = b.build().map_err(|e| format!("{location}: {e}"))?;
        let prefix = prefix.trim_matches('/');
        Ok((
            Arc::new(s),
            (!prefix.is_empty()).then(|| StorePath::from(prefix)),
        ))
    } else if location.contains("://") {
        Err(format!(
            "{location}: only directories and s3:// locations are supported"
        ))
    } else if !settings.is_empty() {
        Err("-X settings apply to s3:// locations only".into())
    } else {
        let s =
            LocalFileSystem::new_with_prefix(location).map_err(|e| format!("{location}: {e}"))?;
        Ok((Arc::new(s), None))
    }
}

/// Skipped keys: checksum sidecars and dot files.
fn is_backup(key: &str) -> bool {
    let name = key.rsplit('/').next().unwrap_or(key);
    !name.starts_with('.') && !name.ends_with(".sha256")
}

/// Lists `prefix` in `store` once and finds each class's newest object. `classes` are tried in
/// order; put the default class (if any) last.
pub async fn scan(
    store: &dyn ObjectStore,
    prefix: Option<&StorePath>,
    classes: Vec<Class>,
) -> object_store::Result<Vec<ClassReport>> {
    let mut reports: Vec<ClassReport> = classes
        .into_iter()
        .map(|class| ClassReport {
            class,
            objects: 0,
            newest: None,
        })
        .collect();
    let skip = prefix.map_or(0, |p| {
        let s = p.as_ref();
        if s.is_empty() {
            0
        } else {
            s.len() + 1
        }
    });
    let mut list = store.list(prefix);
    while let Some(meta) = list.next().await {
        let meta = meta?;
        let full = meta.location.as_ref();
        let key = full.get(skip..).unwrap_or(full);
        if !is_backup(key) {
            continue;
        }
        if let Some(r) = reports.iter_mut().find(|r| r.class.matches(key)) {
            r.objects += 1;
            let newer = match &r.newest {
                None => true,
                Some(n) => meta.last_modified > n.modified,
            };
            if newer {
                r.newest = Some(Newest {
                    key: key.to_string(),
                    modified: meta.last_modified,
                    size: meta.size,
                });
            }
        }
    }
    Ok(reports)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classes_match_by_prefix_or_glob_first_wins() {
        let h = TimeDelta::try_hours(1).unwrap();
        let t = Class::new("telemetry", h, None).unwrap();
        assert!(t.matches("telemetry/2024/a.dump"));
        assert!(!t.matches("x/telemetry/a.dump"));
        let g = Class::new("wal", h, Some("wal/*.gz")).unwrap();
        assert!(g.matches("wal/000000010000000000000001.gz"));
        assert!(!g.matches("wal/sub/000000010000000000000001.gz"));
        assert!(Class::new("a/b", h, None).is_err());
        assert!(Class::new("x", h, Some("[")).is_err());
        assert!(Class::default_class(h).matches("anything/at/all"));
        assert!(!is_backup("pg/x.dump.sha256"));
        assert!(!is_backup("pg/.x.dump.tmp"));
        assert!(is_backup("pg/x.dump"));
    }
}
