use super::keys::{content_type, partial_path};
use super::s3::http_error;
use super::*;
use std::collections::HashMap;

#[test]
fn keys_cannot_escape_the_root() {
    assert!(check_key("videos/1/abc.mp4").is_ok());
    for bad in [
        "",
        "/etc/passwd",
        "../x",
        "videos/../../x",
        "a//b",
        "a/./b",
        "a\\b",
        "videos/..",
        "a/b/",
        "x\0y",
    ] {
        assert!(check_key(bad).is_err(), "{bad} accepted");
    }
}

fn env(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
    let map: HashMap<String, String> =
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
    move |name| map.get(name).cloned()
}

const CREDS: [(&str, &str); 2] =
    [("AWS_ACCESS_KEY_ID", "AKIDEXAMPLE"), ("AWS_SECRET_ACCESS_KEY", "wJalrXUtnFEMI-s3cret")];

fn s3(url: &str, extra: &[(&str, &str)]) -> anyhow::Result<Storage> {
    let mut pairs = CREDS.to_vec();
    pairs.extend_from_slice(extra);
    Storage::from_url_with_env(url, &env(&pairs))
}

fn reason(result: anyhow::Result<Storage>) -> String {
    let err = result.expect_err("accepted");
    crate::bad_input_reason(&err).unwrap_or_else(|| panic!("not bad input: {err:#}")).to_string()
}

#[test]
fn s3_urls_give_bucket_and_prefix() {
    for (url, bucket, prefix) in [
        ("s3://clips", "clips", ""),
        ("s3://clips/", "clips", ""),
        ("s3://clips/prefix", "clips", "prefix"),
        ("s3://my.clips-2/a/b/", "my.clips-2", "a/b"),
    ] {
        match s3(url, &[]).unwrap() {
            Storage::S3 { bucket: b, prefix: p, .. } => {
                assert_eq!((b.as_str(), p.as_str()), (bucket, prefix), "{url}")
            }
            other => panic!("{url}: {other:?}"),
        }
    }
}

#[test]
fn bad_s3_urls_are_bad_input_without_secrets() {
    for (url, needle) in [
        ("s3://", "not a bucket name"),
        ("s3://ab/x", "not a bucket name"),
        ("s3://Clips/x", "not a bucket name"),
        ("s3://bucket_1/x", "not a bucket name"),
        ("s3://clips/../x", "not a plain relative path"),
        ("s3://clips/a//b", "not a plain relative path"),
        ("s3://clips/a/?x=1", "no query"),
        ("s3://key:hunter2@clips/x", "not in the URL"),
    ] {
        let text = reason(s3(url, &[]));
        assert!(text.contains(needle), "{url}: {text}");
        assert!(!text.contains("hunter2"), "{url}: {text}");
    }
    let text = reason(Storage::from_url("ftp://u:hunter2@host/x"));
    assert!(text.contains("file:// or s3://") && !text.contains("hunter2"), "{text}");
    for (url, needle) in [
        ("s3://clips/a/./b", "not a plain relative path"),
        ("s3://clips/%2E%2e/x", "not a plain relative path"),
        ("s3://clips/a%2F%2Fb", "not a plain relative path"),
        ("s3://clips/a%5Cb", "not a plain relative path"),
        ("s3://clips/%FF", "not a plain relative path"),
        ("s3://clips/a#f", "no query or fragment"),
        ("s3://key@clips/x", "not in the URL"),
        ("s3://clips:9000/x", "no port"),
        ("s3://clips:x/p", "is not a URL"),
        ("s3://key:hunter2@clips:x/p", "is not a URL"),
        ("S3://clips/x", "file:// or s3://"),
    ] {
        let text = reason(s3(url, &[]));
        assert!(text.contains(needle), "{url}: {text}");
        assert!(!text.contains("hunter2") && !text.contains('\n'), "{url}: {text}");
    }
}

#[test]
fn s3_prefixes_are_percent_decoded() {
    for (url, prefix) in [
        ("s3://clips/a%20b/c", "a b/c"),
        ("s3://clips/a b", "a b"),
        ("s3://clips/視頻/x", "視頻/x"),
        ("s3://clips/a%2Fb", "a/b"),
    ] {
        let Storage::S3 { prefix: p, .. } = s3(url, &[]).unwrap() else { panic!("{url}") };
        assert_eq!(p, prefix, "{url}");
    }
}

#[test]
fn file_urls_give_the_directory() {
    for (url, root) in [
        ("file:///var/lib/videoclip", "/var/lib/videoclip"),
        ("file:///var/lib/videoclip/", "/var/lib/videoclip/"),
        ("file://localhost/srv/clips", "/srv/clips"),
        ("file:///srv/my%20clips", "/srv/my clips"),
        ("file:///srv/my clips", "/srv/my clips"),
        ("file:///", "/"),
        // Relative directories, as written.
        ("file://./storage", "./storage"),
        ("file://storage", "storage"),
        ("file://../shared/storage", "../shared/storage"),
        ("file://./a/../b", "./a/../b"),
    ] {
        match Storage::from_url(url).unwrap() {
            Storage::Local { root: r } => assert_eq!(r, Path::new(root), "{url}"),
            other => panic!("{url}: {other:?}"),
        }
    }
    for (url, needle) in [
        ("file://", "needs a directory"),
        ("file:///srv/clips?x=1", "no query or fragment"),
        ("file:///srv/clips#x", "no query or fragment"),
        ("file:relative", "file:// or s3://"),
    ] {
        let text = reason(Storage::from_url(url));
        assert!(text.contains(needle), "{url}: {text}");
    }
}

#[test]
fn s3_needs_credentials_and_a_usable_endpoint() {
    let text =
        reason(Storage::from_url_with_env("s3://clips/x", &env(&[("AWS_ACCESS_KEY_ID", "a")])));
    assert!(text.contains("AWS_SECRET_ACCESS_KEY"), "{text}");
    let text = reason(s3("s3://clips/x", &[("S3_ENDPOINT", "ftp://u:hunter2@host")]));
    assert!(text.contains("S3_ENDPOINT") && !text.contains("hunter2"), "{text}");
}

#[test]
fn custom_endpoints_are_path_style_and_aws_is_not() {
    let storage = s3(
        "s3://clips/p",
        &[("S3_ENDPOINT", "http://127.0.0.1:9000/"), ("S3_REGION", "eu-west-3")],
    )
    .unwrap();
    let Storage::S3 { client, .. } = &storage else { panic!() };
    assert!(client.bucket.is_path_style());
    assert_eq!(client.bucket.url(), "http://127.0.0.1:9000/clips");
    assert_eq!(client.bucket.region().to_string(), "eu-west-3");
    assert_eq!(storage.to_string(), "s3://clips/p at http://127.0.0.1:9000/ (eu-west-3)");

    let storage = s3("s3://clips", &[("S3_REGION", "")]).unwrap();
    let Storage::S3 { client, .. } = &storage else { panic!() };
    assert!(!client.bucket.is_path_style());
    assert_eq!(client.bucket.region().to_string(), "us-east-1");
    assert_eq!(client.bucket.url(), "https://clips.s3.amazonaws.com");
}

#[test]
fn secrets_never_show() {
    let storage = s3(
        "s3://clips/p",
        &[("S3_ENDPOINT", "http://127.0.0.1:9000"), ("AWS_SESSION_TOKEN", "tok-s3cret")],
    )
    .unwrap();
    for text in [format!("{storage:?}"), format!("{storage:#?}"), storage.to_string()] {
        assert!(!text.contains("s3cret") && !text.contains("AKIDEXAMPLE"), "{text}");
    }
}

#[test]
fn keys_go_under_the_prefix() {
    let storage = s3("s3://clips/tenant/a", &[]).unwrap();
    assert_eq!(storage.object_name("videos/1/x.mp4").unwrap(), "tenant/a/videos/1/x.mp4");
    assert!(storage.object_name("../b/x.mp4").is_err());
    assert!(storage.object_name("/tenant/a/x").is_err());
    assert_eq!(storage.describe_key("videos/1/x.mp4"), "s3://clips/tenant/a/videos/1/x.mp4");
    let root = s3("s3://clips", &[]).unwrap();
    assert_eq!(root.object_name("videos/1/x.mp4").unwrap(), "videos/1/x.mp4");
    assert!(root.local_path("videos/1/x.mp4").is_err());
}

#[test]
fn error_responses_are_classified() {
    let no_key = b"<?xml version=\"1.0\"?><Error><Code>NoSuchKey</Code><Message>The specified key does not exist.</Message></Error>";
    let err = http_error("videos/1/x.mp4", 404, no_key);
    assert_eq!(
        crate::bad_input_reason(&err).unwrap().to_string(),
        "stored file videos/1/x.mp4 is missing"
    );
    assert!(crate::bad_input_reason(&http_error("k", 404, b"")).is_some());
    let no_bucket = b"<Error><Code>NoSuchBucket</Code></Error>";
    let err = http_error("k", 404, no_bucket);
    assert!(crate::bad_input_reason(&err).is_none());
    assert_eq!(err.to_string(), "HTTP 404: NoSuchBucket");
    assert_eq!(http_error("k", 503, b"Slow Down\n").to_string(), "HTTP 503: Slow Down");
}

#[test]
fn content_types_and_partial_names() {
    for (key, mime) in [
        ("clips/1/t/a.MP4", "video/mp4"),
        ("clips/1/t/a.m4v", "video/mp4"),
        ("videos/1/a.mov", "video/quicktime"),
        ("videos/1/a.mkv", "video/x-matroska"),
        ("clips/1/t/a.webm", "video/webm"),
        ("clips/1/t/a.jpg", "image/jpeg"),
        ("clips/1/t/a.JPEG", "image/jpeg"),
        ("clips/1/t/a.png", "image/png"),
        ("clips/1/t/a.json", "application/json"),
        ("x", "application/octet-stream"),
        ("dir.v2/x", "application/octet-stream"),
        ("videos/1/a.unknownext", "application/octet-stream"),
    ] {
        assert_eq!(content_type(key), mime, "{key}");
    }
    assert_eq!(partial_path(Path::new("/tmp/s/a.mp4")), Path::new("/tmp/s/a.mp4.partial"));
}

#[tokio::test]
async fn local_storage_round_trip() {
    let root = std::env::temp_dir().join(format!("videoclip-storage-test-{}", std::process::id()));
    let storage = Storage::from_url(&format!("file://{}", root.display())).unwrap();
    let source = root.join("in.bin");
    tokio::fs::create_dir_all(&root).await.unwrap();
    tokio::fs::write(&source, b"hello").await.unwrap();
    assert_eq!(storage.put_file(&source, "videos/1/a.mp4").await.unwrap(), 5);
    assert!(storage.exists("videos/1/a.mp4").await.unwrap());
    let copy = storage.open_local("videos/1/a.mp4", &root.join("scratch")).await.unwrap();
    assert_eq!(
        (copy.path(), copy.size(), copy.is_temporary()),
        (root.join("videos/1/a.mp4").as_path(), 5, false)
    );
    drop(copy);
    assert_eq!(storage.fetch_to("videos/1/a.mp4", &root.join("out/b.mp4")).await.unwrap(), 5);
    // What a write killed midway leaves: listed, so gc can delete it.
    tokio::fs::write(root.join("videos/1/b.jpg.partial"), b"hal").await.unwrap();
    let mut listed = storage.list("videos").await.unwrap();
    listed.sort_by(|a, b| a.key.cmp(&b.key));
    assert_eq!(
        listed.iter().map(|o| (o.key.as_str(), o.size)).collect::<Vec<_>>(),
        vec![("videos/1/a.mp4", 5), ("videos/1/b.jpg.partial", 3)]
    );
    storage.delete("videos/1/b.jpg.partial").await.unwrap();
    assert!(listed[0].modified.is_some());
    let err = storage.open_local("videos/1/none.mp4", &root).await.unwrap_err();
    assert_eq!(
        crate::bad_input_reason(&err).unwrap().to_string(),
        "stored file videos/1/none.mp4 is missing"
    );
    let err = storage.fetch_to("videos/1/none.mp4", &root.join("out/c.mp4")).await.unwrap_err();
    assert!(crate::bad_input_reason(&err).is_some(), "{err:#}");
    assert!(storage.open_local("../in.bin", &root).await.is_err());
    storage.delete("videos/1/a.mp4").await.unwrap();
    storage.delete("videos/1/a.mp4").await.unwrap();
    assert!(!storage.exists("videos/1/a.mp4").await.unwrap());
    tokio::fs::remove_dir_all(&root).await.unwrap();
}
