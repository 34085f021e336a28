ALTER TABLE download_records
    MODIFY download_url VARCHAR(500) COMMENT '下载链接';
