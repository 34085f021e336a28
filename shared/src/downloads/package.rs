//! Building a package: the clips, their thumbnails and subtitle files and a
//! `manifest.json`, as a zip or tar archive written to a temporary file one
//! entry at a time (each stored file is fetched, copied in and let go
//! before the next), so memory stays bounded whatever the package's size.
//! The caller uploads the finished file with [`Storage::put_file`].
//!
//! Zip entries of media (mp4, jpg: already compressed) are stored, text
//! (the manifest, subtitles) deflated; entries of 4 GiB or more use Zip64.
//! Tar archives are plain ustar/GNU tar, uncompressed (media do not shrink).
//!
//! Layout, `NN` the clip's position (zero-padded) and `TYPE` its selling
//! point type:
//!
//! ```text
//! manifest.json
//! clips/NN-TYPE-SEGMENT_ID.mp4
//! thumbnails/NN-TYPE-SEGMENT_ID.jpg
//! subtitles/NN-TYPE-SEGMENT_ID.srt   (and .vtt; when the segment has them)
//! ```
//!
//! (Over 400 lines with its tests: the writer is one unit, its tests beside it.)

use crate::storage::Storage;
use crate::BadInput;
use anyhow::Context;
use serde::{Deserialize, Serialize};
use std::collections::HashSet;
use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

/// The name of the manifest inside every package.
pub const MANIFEST_NAME: &str = "manifest.json";

/// `download_records.package_format`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum PackageFormat {
    Zip,
    Tar,
}

impl PackageFormat {
    /// The column value and the file extension.
    pub fn as_str(self) -> &'static str {
        match self {
            PackageFormat::Zip => "zip",
            PackageFormat::Tar => "tar",
        }
    }

    /// The format a column value names.
    pub fn parse(text: &str) -> Result<PackageFormat, BadInput> {
        match text {
            "zip" => Ok(PackageFormat::Zip),
            "tar" => Ok(PackageFormat::Tar),
            other => {
                Err(BadInput::new(format!("package format must be zip or tar, not {other:?}")))
            }
        }
    }
}

/// One clip to package: what its segment row says, and the storage keys of
/// its files.
#[derive(Debug, Clone)]
pub struct PackageClip {
    pub segment_id: String,
    pub selling_point_type: String,
    pub start_time: f64,
    pub end_time: f64,
    pub duration: f64,
    pub title: Option<String>,
    pub description: Option<String>,
    pub confidence: Option<f64>,
    /// The clip to package (the plain one, or the templated one).
    pub clip_key: String,
    pub thumbnail_key: Option<String>,
    /// Subtitle files (`.srt`, `.vtt`) the segment has.
    pub subtitle_keys: Vec<String>,
}

/// `manifest.json`: what the package holds.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Manifest {
    pub download_id: String,
    pub package_format: PackageFormat,
    /// True when the clips are the templated ones (intro, outro, watermark...).
    pub templated: bool,
    pub clips: Vec<ManifestClip>,
}

/// One clip of the manifest, with the paths of its files in the archive.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ManifestClip {
    pub segment_id: String,
    /// `hook`, `material`, `effect` or `promotion`.
    pub selling_point_type: String,
    /// Seconds in the source video.
    pub start_time: f64,
    pub end_time: f64,
    pub duration: f64,
    pub title: Option<String>,
    pub description: Option<String>,
    pub confidence: Option<f64>,
    /// The clip's path in the archive.
    pub clip: String,
    /// Its size in bytes.
    pub clip_size: u64,
    pub thumbnail: Option<String>,
    pub subtitles: Vec<String>,
}

/// A finished package on the local disk.
#[derive(Debug)]
pub struct BuiltPackage {
    pub path: PathBuf,
    pub size: u64,
    pub manifest: Manifest,
}

/// Extensions whose entries are deflated in a zip (text); everything else
/// is stored as it is.
const DEFLATED: &[&str] = &["json", "srt", "vtt", "txt", "ass"];

/// The extension of a key or name, lower case ("" if none).
fn extension(name: &str) -> String {
    let last = name.rsplit('/').next().unwrap_or(name);
    match last.rsplit_once('.') {
        Some((stem, ext)) if !stem.is_empty() => ext.to_ascii_lowercase(),
        _ => String::new(),
    }
}

/// A name part made of safe characters only (for entry names built from
/// row values).
fn safe(part: &str) -> String {
    part.chars()
        .map(|c| if c.is_ascii_alphanumeric() || c == '-' || c == '_' { c } else { '_' })
        .collect()
}

/// An archive being written to a file.
pub struct ArchiveWriter {
    inner: Inner,
    names: HashSet<String>,
}

enum Inner {
    Zip(Box<zip::ZipWriter<File>>),
    Tar(tar::Builder<BufWriter<File>>),
}

impl ArchiveWriter {
    /// Creates (or truncates) `path` as an empty archive of `format`.
    pub fn create(path: &Path, format: PackageFormat) -> anyhow::Result<ArchiveWriter> {
        let file = File::create(path).with_context(|| format!("creating {}", path.display()))?;
        let inner = match format {
            PackageFormat::Zip => Inner::Zip(Box::new(zip::ZipWriter::new(file))),
            PackageFormat::Tar => {
                let mut builder = tar::Builder::new(BufWriter::with_capacity(1 << 20, file));
                builder.mode(tar::HeaderMode::Deterministic);
                Inner::Tar(builder)
            }
        };
        Ok(ArchiveWriter { inner, names: HashSet::new() })
    }

    fn claim(&mut self, name: &str) -> anyhow::Result<()> {
        crate::storage::check_key(name).map_err(|_| anyhow::anyhow!("bad entry name {name:?}"))?;
        anyhow::ensure!(self.names.insert(name.to_string()), "two entries named {name}");
        Ok(())
    }

    fn zip_options(name: &str, size: u64) -> zip::write::SimpleFileOptions {
        let method = if DEFLATED.contains(&extension(name).as_str()) {
            zip::CompressionMethod::Deflated
        } else {
            zip::CompressionMethod::Stored
        };
        zip::write::SimpleFileOptions::default()
            .compression_method(method)
            .unix_permissions(0o644)
            .large_file(size >= u64::from(u32::MAX))
    }

    fn tar_header(size: u64) -> tar::Header {
        let mut header = tar::Header::new_gnu();
        header.set_size(size);
        header.set_mode(0o644);
        header.set_entry_type(tar::EntryType::Regular);
        header.set_mtime(
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_secs())
                .unwrap_or(0),
        );
        header
    }

    /// Copies the file at `source` into the archive as `name` (streamed, in
    /// blocks); returns its size.
    pub fn add_file(&mut self, name: &str, source: &Path) -> anyhow::Result<u64> {
        self.claim(name)?;
        let mut file =
            File::open(source).with_context(|| format!("opening {}", source.display()))?;
        let size = file.metadata().with_context(|| format!("reading {}", source.display()))?.len();
        let what = || format!("adding {name} to the package");
        match &mut self.inner {
            Inner::Zip(zip) => {
                zip.start_file(name, Self::zip_options(name, size)).with_context(what)?;
                let copied = std::io::copy(&mut file, zip.as_mut()).with_context(what)?;
                anyhow::ensure!(copied == size, "{name}: copied {copied} bytes of {size}");
            }
            Inner::Tar(tar) => {
                let mut header = Self::tar_header(size);
                tar.append_data(&mut header, name, &mut file).with_context(what)?;
            }
        }
        Ok(size)
    }

    /// Adds `data` as `name`.
    pub fn add_bytes(&mut self, name: &str, data: &[u8]) -> anyhow::Result<()> {
        self.claim(name)?;
        let what = || format!("adding {name} to the package");
        match &mut self.inner {
            Inner::Zip(zip) => {
                zip.start_file(name, Self::zip_options(name, data.len() as u64))
                    .with_context(what)?;
                zip.write_all(data).with_context(what)?;
            }
            Inner::Tar(tar) => {
                let mut header = Self::tar_header(data.len() as u64);
                tar.append_data(&mut header, name, data).with_context(what)?;
            }
        }
        Ok(())
    }

    /// Writes the archive's directory (zip) or end blocks (tar) and flushes
    /// the file to disk.
    pub fn finish(self) -> anyhow::Result<()> {
        let file = match self.inner {
            Inner::Zip(zip) => zip.finish().context("finishing the zip archive")?,
            Inner::Tar(tar) => tar
                .into_inner()
                .context("finishing the tar archive")?
                .into_inner()
                .map_err(|e| e.into_error())
                .context("writing the tar archive")?,
        };
        file.sync_all().context("writing the package to disk")?;
        Ok(())
    }
}

/// Names of one clip's entries, from its position and row.
fn entry_stem(index: usize, count: usize, clip: &PackageClip) -> String {
    let width = count.to_string().len().max(2);
    format!("{:0width$}-{}-{}", index + 1, safe(&clip.selling_point_type), safe(&clip.segment_id))
}

/// What to package: the download, its format, and its clips in order.
#[derive(Debug, Clone)]
pub struct PackageRequest<'a> {
    pub download_id: &'a str,
    pub format: PackageFormat,
    /// Whether `clips` are the templated ones (said in the manifest).
    pub templated: bool,
    pub clips: &'a [PackageClip],
}

/// Builds the package of `request.clips` as `{scratch}/{download_id}.{format}`:
/// fetches each stored file (for `file://` storage read in place, for
/// `s3://` downloaded into `scratch` and deleted once copied), appends it,
/// then the manifest. `progress(done, total)` is called after each clip;
/// `stopped()` is asked between files, and a true answer ends the build
/// with an error. A stored file that is missing is [`BadInput`].
pub async fn build(
    storage: &Storage,
    request: PackageRequest<'_>,
    scratch: &Path,
    mut progress: impl FnMut(usize, usize),
    stopped: impl Fn() -> bool,
) -> anyhow::Result<BuiltPackage> {
    let PackageRequest { download_id, format, templated, clips } = request;
    tokio::fs::create_dir_all(scratch)
        .await
        .with_context(|| format!("creating {}", scratch.display()))?;
    let path = scratch.join(format!("{}.{}", safe(download_id), format.as_str()));
    let fetched = scratch.join("fetched");
    let target = path.clone();
    let mut writer = tokio::task::spawn_blocking(move || ArchiveWriter::create(&target, format))
        .await
        .context("package writer")??;
    let mut manifest = Manifest {
        download_id: download_id.to_string(),
        package_format: format,
        templated,
        clips: Vec::with_capacity(clips.len()),
    };
    for (index, clip) in clips.iter().enumerate() {
        let stem = entry_stem(index, clips.len(), clip);
        let clip_ext = match extension(&clip.clip_key) {
            ext if ext.is_empty() => "mp4".to_string(),
            ext => ext,
        };
        let clip_name = format!("clips/{stem}.{clip_ext}");
        let mut files = vec![(clip_name.clone(), clip.clip_key.clone())];
        let thumbnail = clip.thumbnail_key.as_ref().map(|key| {
            let ext = match extension(key) {
                ext if ext.is_empty() => "jpg".to_string(),
                ext => ext,
            };
            (format!("thumbnails/{stem}.{ext}"), key.clone())
        });
        files.extend(thumbnail.clone());
        let mut subtitles = Vec::new();
        for key in &clip.subtitle_keys {
            let name = format!("subtitles/{stem}.{}", extension(key));
            subtitles.push(name.clone());
            files.push((name, key.clone()));
        }
        let mut clip_size = 0;
        for (name, key) in files {
            if stopped() {
                anyhow::bail!("stopped while packaging");
            }
            let local = storage.open_local(&key, &fetched).await?;
            let source = local.path().to_path_buf();
            let entry = name.clone();
            let (back, size) = tokio::task::spawn_blocking(move || {
                let size = writer.add_file(&entry, &source);
                (writer, size)
            })
            .await
            .context("package writer")?;
            writer = back;
            let size = size?;
            drop(local);
            if name == clip_name {
                clip_size = size;
            }
        }
        manifest.clips.push(ManifestClip {
            segment_id: clip.segment_id.clone(),
            selling_point_type: clip.selling_point_type.clone(),
            start_time: clip.start_time,
            end_time: clip.end_time,
            duration: clip.duration,
            title: clip.title.clone(),
            description: clip.description.clone(),
            confidence: clip.confidence,
            clip: clip_name,
            clip_size,
            thumbnail: thumbnail.map(|(name, _)| name),
            subtitles,
        });
        progress(index + 1, clips.len());
    }
    let json = serde_json::to_vec_pretty(&manifest).context("writing the manifest")?;
    tokio::task::spawn_blocking(move || {
        writer.add_bytes(MANIFEST_NAME, &json)?;
        writer.finish()
    })
    .await
    .context("package writer")??;
    let _ = tokio::fs::remove_dir_all(&fetched).await;
    let size = tokio::fs::metadata(&path)
        .await
        .with_context(|| format!("reading {}", path.display()))?
        .len();
    Ok(BuiltPackage { path, size, manifest })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;

    fn scratch(name: &str) -> PathBuf {
        let dir = std::env::temp_dir()
            .join(format!("videoclip-package-test-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    fn clip(root: &Path, id: &str, with_subtitles: bool) -> PackageClip {
        let dir = root.join("clips/1/t/attempt-1");
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join(format!("{id}.mp4")), vec![7u8; 70_000]).unwrap();
        std::fs::write(dir.join(format!("{id}.jpg")), vec![9u8; 3_000]).unwrap();
        let mut subtitle_keys = Vec::new();
        if with_subtitles {
            std::fs::write(dir.join(format!("{id}.srt")), "1\n00:00:00,000 --> 00:00:01,000\nhi\n")
                .unwrap();
            subtitle_keys.push(format!("clips/1/t/attempt-1/{id}.srt"));
        }
        PackageClip {
            segment_id: id.into(),
            selling_point_type: "hook".into(),
            start_time: 1.0,
            end_time: 3.5,
            duration: 2.5,
            title: Some("标题".into()),
            description: None,
            confidence: Some(0.9),
            clip_key: format!("clips/1/t/attempt-1/{id}.mp4"),
            thumbnail_key: Some(format!("clips/1/t/attempt-1/{id}.jpg")),
            subtitle_keys,
        }
    }

    fn block_on<F: std::future::Future>(f: F) -> F::Output {
        tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(f)
    }

    #[test]
    fn a_zip_package_stores_media_deflates_text_and_matches_its_manifest() {
        let dir = scratch("zip");
        let storage = Storage::Local { root: dir.join("storage") };
        let clips =
            vec![clip(&dir.join("storage"), "a", true), clip(&dir.join("storage"), "b", false)];
        let request = PackageRequest {
            download_id: "d1",
            format: PackageFormat::Zip,
            templated: false,
            clips: &clips,
        };
        let built =
            block_on(build(&storage, request, &dir.join("scratch"), |_, _| {}, || false)).unwrap();
        assert_eq!(built.size, std::fs::metadata(&built.path).unwrap().len());
        let mut archive = zip::ZipArchive::new(File::open(&built.path).unwrap()).unwrap();
        let mut manifest = String::new();
        archive.by_name(MANIFEST_NAME).unwrap().read_to_string(&mut manifest).unwrap();
        let manifest: Manifest = serde_json::from_str(&manifest).unwrap();
        assert_eq!(manifest, built.manifest);
        assert_eq!(manifest.clips[0].clip, "clips/01-hook-a.mp4");
        assert_eq!(manifest.clips[0].subtitles, vec!["subtitles/01-hook-a.srt"]);
        assert_eq!(manifest.clips[1].thumbnail.as_deref(), Some("thumbnails/02-hook-b.jpg"));
        assert_eq!(manifest.clips[1].clip_size, 70_000);
        let media = archive.by_name("clips/02-hook-b.mp4").unwrap();
        assert_eq!(media.compression(), zip::CompressionMethod::Stored);
        assert_eq!(media.size(), 70_000);
        drop(media);
        let text = archive.by_name("subtitles/01-hook-a.srt").unwrap();
        assert_eq!(text.compression(), zip::CompressionMethod::Deflated);
        drop(text);
        assert_eq!(archive.len(), 6);
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn a_tar_package_holds_the_same_entries() {
        let dir = scratch("tar");
        let storage = Storage::Local { root: dir.join("storage") };
        let clips = vec![clip(&dir.join("storage"), "a", true)];
        let request = PackageRequest {
            download_id: "d2",
            format: PackageFormat::Tar,
            templated: true,
            clips: &clips,
        };
        let built =
            block_on(build(&storage, request, &dir.join("scratch"), |_, _| {}, || false)).unwrap();
        let mut archive = tar::Archive::new(File::open(&built.path).unwrap());
        let mut names = Vec::new();
        for entry in archive.entries().unwrap() {
            let mut entry = entry.unwrap();
            let name = entry.path().unwrap().to_string_lossy().to_string();
            let mut data = Vec::new();
            entry.read_to_end(&mut data).unwrap();
            if name == MANIFEST_NAME {
                let manifest: Manifest = serde_json::from_slice(&data).unwrap();
                assert!(manifest.templated);
            }
            names.push((name, data.len()));
        }
        assert_eq!(
            names,
            vec![
                ("clips/01-hook-a.mp4".to_string(), 70_000),
                ("thumbnails/01-hook-a.jpg".to_string(), 3_000),
                ("subtitles/01-hook-a.srt".to_string(), 35),
                (MANIFEST_NAME.to_string(), names[3].1),
            ]
        );
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn a_missing_stored_file_is_bad_input_and_a_stop_ends_the_build() {
        let dir = scratch("missing");
        let storage = Storage::Local { root: dir.join("storage") };
        let mut gone = clip(&dir.join("storage"), "a", false);
        gone.clip_key = "clips/1/t/attempt-1/nope.mp4".into();
        let err = block_on(build(
            &storage,
            PackageRequest {
                download_id: "d3",
                format: PackageFormat::Zip,
                templated: false,
                clips: &[gone],
            },
            &dir.join("s"),
            |_, _| {},
            || false,
        ))
        .unwrap_err();
        assert!(crate::bad_input_reason(&err).is_some(), "{err:#}");
        let ok = clip(&dir.join("storage"), "b", false);
        let err = block_on(build(
            &storage,
            PackageRequest {
                download_id: "d4",
                format: PackageFormat::Zip,
                templated: false,
                clips: &[ok],
            },
            &dir.join("s"),
            |_, _| {},
            || true,
        ))
        .unwrap_err();
        assert!(err.to_string().contains("stopped"));
        let _ = std::fs::remove_dir_all(&dir);
    }
}
