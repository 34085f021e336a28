-- Download packages (`download_records`), beyond the seed.
--
-- `download_url` holds the link a package is fetched by: for `s3://`
-- storage a presigned GET URL (the endpoint, the object's key, the
-- credential scope, the signature and, with temporary credentials, the
-- session token: easily more than the seed's 500 characters), for `file://`
-- storage a link signed with HMAC-SHA256. Widened so no valid link is cut.
ALTER TABLE download_records
    MODIFY download_url VARCHAR(2048) COMMENT '下载链接 (S3 presigned GET, or an HMAC-signed link for file:// storage)';
