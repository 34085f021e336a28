-- The platform's seed schema: docs/seed/video-clip-database-design.md,
-- sections 3 (tables) and 5.1 (indexes), on MariaDB 10.11 and MySQL 8.0.
--
-- Deviations from the seed, each for a reason:
-- * A column declared `UNIQUE` inline and then again as `uk_*` in section 5.1
--   would get two identical unique indexes. Each is declared once, under the
--   section 5.1 name (`uk_username`, `uk_email`, `uk_task_id`, `uk_segment_id`)
--   or as `uk_<column>` where 5.1 names none.
-- * Plain indexes that repeat a unique index on the same column
--   (`idx_username`, `idx_email`, `idx_task_id`, `idx_segment_id`,
--   `idx_template_id`, `idx_download_id`, `idx_config_key`) are left out: the
--   unique index serves every query they would, and each copy costs a write
--   on the hot insert paths.
-- * Section 5.1's JSON functional index on `user_configs.config_value` is left
--   out: MariaDB has no functional indexes and MySQL refuses functional
--   indexes on JSON values. Looking up a user's `selling_points` config goes
--   through `uk_user_key (user_id, config_key)`.
-- * Section 5.2's partitioning is left out: InnoDB refuses partitioned tables
--   with foreign keys, and the seed keeps the foreign keys.
-- * `processing_tasks.idx_status` is replaced by the queue's own index on
--   `(status, queued_at, priority, id)` in the next migration (same leading
--   column, so it serves every query `idx_status` would).

CREATE TABLE users (
    id BIGINT PRIMARY KEY AUTO_INCREMENT COMMENT '用户ID',
    username VARCHAR(50) NOT NULL COMMENT '用户名',
    email VARCHAR(100) NOT NULL COMMENT '邮箱',
    phone VARCHAR(20) COMMENT '手机号',
    password_hash VARCHAR(255) NOT NULL COMMENT '密码哈希',
    avatar_url VARCHAR(500) COMMENT '头像URL',
    status TINYINT NOT NULL DEFAULT 1 COMMENT '状态: 1-正常, 0-禁用',
    user_type TINYINT NOT NULL DEFAULT 1 COMMENT '用户类型: 1-免费, 2-付费, 3-企业',
    created_at TIMESTAMP NULL DEFAULT CURRENT_TIMESTAMP COMMENT '创建时间',
    updated_at TIMESTAMP NULL DEFAULT CURRENT_TIMESTAMP ON UPDATE CURRENT_TIMESTAMP COMMENT '更新时间',
    last_login_at TIMESTAMP NULL COMMENT '最后登录时间',

    UNIQUE KEY uk_username (username),
    UNIQUE KEY uk_email (email),
    INDEX idx_status (status),
    INDEX idx_created_at (created_at)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci COMMENT='用户表';

CREATE TABLE user_configs (
    id BIGINT PRIMARY KEY AUTO_INCREMENT COMMENT '配置ID',
    user_id BIGINT NOT NULL COMMENT '用户ID',
    config_key VARCHAR(100) NOT NULL COMMENT '配置键',
    config_value JSON COMMENT '配置值',
    created_at TIMESTAMP NULL DEFAULT CURRENT_TIMESTAMP COMMENT '创建时间',
    updated_at TIMESTAMP NULL DEFAULT CURRENT_TIMESTAMP ON UPDATE CURRENT_TIMESTAMP COMMENT '更新时间',

    UNIQUE KEY uk_user_key (user_id, config_key),
    CONSTRAINT fk_user_configs_user FOREIGN KEY (user_id) REFERENCES users(id) ON DELETE CASCADE,
    INDEX idx_user_id (user_id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci COMMENT='用户配置表';

CREATE TABLE user_quotas (
    id BIGINT PRIMARY KEY AUTO_INCREMENT COMMENT '额度ID',
    user_id BIGINT NOT NULL COMMENT '用户ID',
    quota_type VARCHAR(50) NOT NULL COMMENT '额度类型: monthly_videos, storage_space',
    total_quota BIGINT NOT NULL DEFAULT 0 COMMENT '总额度',
    used_quota BIGINT NOT NULL DEFAULT 0 COMMENT '已用额度',
    reset_period VARCHAR(20) NOT NULL DEFAULT 'monthly' COMMENT '重置周期: daily, weekly, monthly',
    last_reset_at TIMESTAMP NULL DEFAULT CURRENT_TIMESTAMP COMMENT '上次重置时间',
    created_at TIMESTAMP NULL DEFAULT CURRENT_TIMESTAMP COMMENT '创建时间',
    updated_at TIMESTAMP NULL DEFAULT CURRENT_TIMESTAMP ON UPDATE CURRENT_TIMESTAMP COMMENT '更新时间',

    UNIQUE KEY uk_user_quota_type (user_id, quota_type),
    CONSTRAINT fk_user_quotas_user FOREIGN KEY (user_id) REFERENCES users(id) ON DELETE CASCADE,
    INDEX idx_user_id (user_id),
    INDEX idx_quota_type (quota_type)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci COMMENT='用户额度表';

CREATE TABLE videos (
    id BIGINT PRIMARY KEY AUTO_INCREMENT COMMENT '视频ID',
    user_id BIGINT NOT NULL COMMENT '用户ID',
    filename VARCHAR(255) NOT NULL COMMENT '文件名',
    original_filename VARCHAR(255) NOT NULL COMMENT '原始文件名',
    file_path VARCHAR(500) NOT NULL COMMENT '文件路径',
    file_size BIGINT NOT NULL COMMENT '文件大小(字节)',
    file_hash VARCHAR(64) COMMENT '文件哈希值',
    mime_type VARCHAR(100) COMMENT 'MIME类型',
    duration DECIMAL(10,2) COMMENT '时长(秒)',
    width INT COMMENT '宽度',
    height INT COMMENT '高度',
    frame_rate DECIMAL(5,2) COMMENT '帧率',
    bitrate BIGINT COMMENT '比特率',
    thumbnail_url VARCHAR(500) COMMENT '缩略图URL',
    status TINYINT NOT NULL DEFAULT 1 COMMENT '状态: 1-已上传, 2-处理中, 3-已完成, 4-失败',
    upload_id VARCHAR(100) COMMENT '上传ID',
    created_at TIMESTAMP NULL DEFAULT CURRENT_TIMESTAMP COMMENT '创建时间',
    updated_at TIMESTAMP NULL DEFAULT CURRENT_TIMESTAMP ON UPDATE CURRENT_TIMESTAMP COMMENT '更新时间',

    CONSTRAINT fk_videos_user FOREIGN KEY (user_id) REFERENCES users(id) ON DELETE CASCADE,
    INDEX idx_user_id (user_id),
    INDEX idx_status (status),
    INDEX idx_created_at (created_at),
    INDEX idx_file_hash (file_hash),
    INDEX idx_upload_id (upload_id),
    INDEX idx_user_status_created (user_id, status, created_at)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci COMMENT='视频表';

CREATE TABLE processing_tasks (
    id BIGINT PRIMARY KEY AUTO_INCREMENT COMMENT '任务ID',
    task_id VARCHAR(100) NOT NULL COMMENT '任务唯一标识',
    user_id BIGINT NOT NULL COMMENT '用户ID',
    video_id BIGINT NOT NULL COMMENT '视频ID',
    task_type VARCHAR(50) NOT NULL DEFAULT 'video_clip' COMMENT '任务类型',
    config JSON COMMENT '处理配置',
    status TINYINT NOT NULL DEFAULT 0 COMMENT '状态: 0-待处理, 1-处理中, 2-已完成, 3-失败, 4-已取消',
    progress TINYINT NOT NULL DEFAULT 0 COMMENT '进度百分比',
    current_step VARCHAR(100) COMMENT '当前步骤',
    error_message TEXT COMMENT '错误信息',
    estimated_duration INT COMMENT '预估耗时(秒)',
    actual_duration INT COMMENT '实际耗时(秒)',
    retry_count TINYINT NOT NULL DEFAULT 0 COMMENT '重试次数',
    max_retries TINYINT NOT NULL DEFAULT 3 COMMENT '最大重试次数',
    priority TINYINT NOT NULL DEFAULT 5 COMMENT '优先级: 1-最高, 10-最低',
    started_at TIMESTAMP NULL COMMENT '开始时间',
    completed_at TIMESTAMP NULL COMMENT '完成时间',
    created_at TIMESTAMP NULL DEFAULT CURRENT_TIMESTAMP COMMENT '创建时间',
    updated_at TIMESTAMP NULL DEFAULT CURRENT_TIMESTAMP ON UPDATE CURRENT_TIMESTAMP COMMENT '更新时间',

    UNIQUE KEY uk_task_id (task_id),
    CONSTRAINT fk_processing_tasks_user FOREIGN KEY (user_id) REFERENCES users(id) ON DELETE CASCADE,
    CONSTRAINT fk_processing_tasks_video FOREIGN KEY (video_id) REFERENCES videos(id) ON DELETE CASCADE,
    INDEX idx_user_id (user_id),
    INDEX idx_video_id (video_id),
    INDEX idx_priority (priority),
    INDEX idx_created_at (created_at),
    INDEX idx_user_status_priority (user_id, status, priority)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci COMMENT='视频处理任务表';

CREATE TABLE processing_results (
    id BIGINT PRIMARY KEY AUTO_INCREMENT COMMENT '结果ID',
    task_id BIGINT NOT NULL COMMENT '任务ID',
    user_id BIGINT NOT NULL COMMENT '用户ID',
    video_id BIGINT NOT NULL COMMENT '原视频ID',
    result_type VARCHAR(50) NOT NULL COMMENT '结果类型: segment, transcript, analysis',
    result_data JSON COMMENT '结果数据',
    file_path VARCHAR(500) COMMENT '文件路径',
    file_size BIGINT COMMENT '文件大小',
    metadata JSON COMMENT '元数据',
    created_at TIMESTAMP NULL DEFAULT CURRENT_TIMESTAMP COMMENT '创建时间',

    CONSTRAINT fk_processing_results_task FOREIGN KEY (task_id) REFERENCES processing_tasks(id) ON DELETE CASCADE,
    CONSTRAINT fk_processing_results_user FOREIGN KEY (user_id) REFERENCES users(id) ON DELETE CASCADE,
    CONSTRAINT fk_processing_results_video FOREIGN KEY (video_id) REFERENCES videos(id) ON DELETE CASCADE,
    INDEX idx_task_id (task_id),
    INDEX idx_user_id (user_id),
    INDEX idx_video_id (video_id),
    INDEX idx_result_type (result_type)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci COMMENT='处理结果表';

CREATE TABLE video_segments (
    id BIGINT PRIMARY KEY AUTO_INCREMENT COMMENT '片段ID',
    segment_id VARCHAR(100) NOT NULL COMMENT '片段唯一标识',
    task_id BIGINT NOT NULL COMMENT '任务ID',
    user_id BIGINT NOT NULL COMMENT '用户ID',
    original_video_id BIGINT NOT NULL COMMENT '原视频ID',
    selling_point_type VARCHAR(50) NOT NULL COMMENT '卖点类型: hook, material, effect, promotion',
    start_time DECIMAL(10,3) NOT NULL COMMENT '开始时间(秒)',
    end_time DECIMAL(10,3) NOT NULL COMMENT '结束时间(秒)',
    duration DECIMAL(10,3) GENERATED ALWAYS AS (end_time - start_time) STORED COMMENT '时长(秒)',
    confidence DECIMAL(3,2) COMMENT '置信度',
    title VARCHAR(200) COMMENT '片段标题',
    description TEXT COMMENT '片段描述',
    file_path VARCHAR(500) COMMENT '文件路径',
    file_size BIGINT COMMENT '文件大小',
    thumbnail_url VARCHAR(500) COMMENT '缩略图URL',
    download_count INT NOT NULL DEFAULT 0 COMMENT '下载次数',
    status TINYINT NOT NULL DEFAULT 1 COMMENT '状态: 1-正常, 0-已删除',
    created_at TIMESTAMP NULL DEFAULT CURRENT_TIMESTAMP COMMENT '创建时间',
    updated_at TIMESTAMP NULL DEFAULT CURRENT_TIMESTAMP ON UPDATE CURRENT_TIMESTAMP COMMENT '更新时间',

    UNIQUE KEY uk_segment_id (segment_id),
    CONSTRAINT fk_video_segments_task FOREIGN KEY (task_id) REFERENCES processing_tasks(id) ON DELETE CASCADE,
    CONSTRAINT fk_video_segments_user FOREIGN KEY (user_id) REFERENCES users(id) ON DELETE CASCADE,
    CONSTRAINT fk_video_segments_video FOREIGN KEY (original_video_id) REFERENCES videos(id) ON DELETE CASCADE,
    INDEX idx_task_id (task_id),
    INDEX idx_user_id (user_id),
    INDEX idx_original_video_id (original_video_id),
    INDEX idx_selling_point_type (selling_point_type),
    INDEX idx_duration (duration),
    INDEX idx_created_at (created_at),
    INDEX idx_user_type_created (user_id, selling_point_type, created_at)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci COMMENT='视频片段表';

CREATE TABLE templates (
    id BIGINT PRIMARY KEY AUTO_INCREMENT COMMENT '模板ID',
    template_id VARCHAR(100) NOT NULL COMMENT '模板唯一标识',
    user_id BIGINT COMMENT '创建用户ID(NULL表示系统模板)',
    name VARCHAR(200) NOT NULL COMMENT '模板名称',
    type VARCHAR(50) NOT NULL COMMENT '模板类型: intro, outro, watermark',
    category VARCHAR(50) COMMENT '模板分类',
    description TEXT COMMENT '模板描述',
    file_path VARCHAR(500) COMMENT '文件路径',
    preview_url VARCHAR(500) COMMENT '预览图URL',
    duration DECIMAL(5,2) COMMENT '时长(秒)',
    width INT COMMENT '宽度',
    height INT COMMENT '高度',
    config JSON COMMENT '模板配置',
    is_public TINYINT NOT NULL DEFAULT 0 COMMENT '是否公开: 1-是, 0-否',
    is_system TINYINT NOT NULL DEFAULT 0 COMMENT '是否系统模板: 1-是, 0-否',
    usage_count INT NOT NULL DEFAULT 0 COMMENT '使用次数',
    status TINYINT NOT NULL DEFAULT 1 COMMENT '状态: 1-正常, 0-禁用',
    created_at TIMESTAMP NULL DEFAULT CURRENT_TIMESTAMP COMMENT '创建时间',
    updated_at TIMESTAMP NULL DEFAULT CURRENT_TIMESTAMP ON UPDATE CURRENT_TIMESTAMP COMMENT '更新时间',

    UNIQUE KEY uk_template_id (template_id),
    CONSTRAINT fk_templates_user FOREIGN KEY (user_id) REFERENCES users(id) ON DELETE SET NULL,
    INDEX idx_user_id (user_id),
    INDEX idx_type (type),
    INDEX idx_category (category),
    INDEX idx_is_public (is_public),
    INDEX idx_is_system (is_system),
    INDEX idx_usage_count (usage_count),
    INDEX idx_status (status)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci COMMENT='模板表';

CREATE TABLE download_records (
    id BIGINT PRIMARY KEY AUTO_INCREMENT COMMENT '下载记录ID',
    download_id VARCHAR(100) NOT NULL COMMENT '下载唯一标识',
    user_id BIGINT NOT NULL COMMENT '用户ID',
    download_type VARCHAR(50) NOT NULL COMMENT '下载类型: single, batch',
    segment_ids JSON COMMENT '片段ID列表',
    file_format VARCHAR(20) NOT NULL DEFAULT 'mp4' COMMENT '文件格式',
    package_format VARCHAR(20) COMMENT '打包格式: zip, tar',
    file_path VARCHAR(500) COMMENT '打包文件路径',
    file_size BIGINT COMMENT '文件大小',
    download_url VARCHAR(500) COMMENT '下载链接',
    expires_at TIMESTAMP NULL COMMENT '链接过期时间',
    download_count INT NOT NULL DEFAULT 0 COMMENT '下载次数',
    status TINYINT NOT NULL DEFAULT 0 COMMENT '状态: 0-准备中, 1-可下载, 2-已过期',
    created_at TIMESTAMP NULL DEFAULT CURRENT_TIMESTAMP COMMENT '创建时间',
    updated_at TIMESTAMP NULL DEFAULT CURRENT_TIMESTAMP ON UPDATE CURRENT_TIMESTAMP COMMENT '更新时间',

    UNIQUE KEY uk_download_id (download_id),
    CONSTRAINT fk_download_records_user FOREIGN KEY (user_id) REFERENCES users(id) ON DELETE CASCADE,
    INDEX idx_user_id (user_id),
    INDEX idx_status (status),
    INDEX idx_expires_at (expires_at),
    INDEX idx_created_at (created_at),
    INDEX idx_user_status_expires (user_id, status, expires_at)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci COMMENT='下载记录表';

CREATE TABLE operation_logs (
    id BIGINT PRIMARY KEY AUTO_INCREMENT COMMENT '日志ID',
    user_id BIGINT COMMENT '用户ID',
    operation VARCHAR(100) NOT NULL COMMENT '操作类型',
    resource_type VARCHAR(50) COMMENT '资源类型',
    resource_id VARCHAR(100) COMMENT '资源ID',
    ip_address VARCHAR(45) COMMENT 'IP地址',
    user_agent VARCHAR(500) COMMENT '用户代理',
    request_data JSON COMMENT '请求数据',
    response_data JSON COMMENT '响应数据',
    execution_time INT COMMENT '执行时间(毫秒)',
    status TINYINT NOT NULL COMMENT '状态: 1-成功, 0-失败',
    error_message TEXT COMMENT '错误信息',
    created_at TIMESTAMP NULL DEFAULT CURRENT_TIMESTAMP COMMENT '创建时间',

    CONSTRAINT fk_operation_logs_user FOREIGN KEY (user_id) REFERENCES users(id) ON DELETE SET NULL,
    INDEX idx_user_id (user_id),
    INDEX idx_operation (operation),
    INDEX idx_resource_type (resource_type),
    INDEX idx_status (status),
    INDEX idx_created_at (created_at),
    INDEX idx_user_agent_prefix (user_agent(100))
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci COMMENT='操作日志表';

CREATE TABLE system_configs (
    id BIGINT PRIMARY KEY AUTO_INCREMENT COMMENT '配置ID',
    config_key VARCHAR(100) NOT NULL COMMENT '配置键',
    config_value JSON NOT NULL COMMENT '配置值',
    description TEXT COMMENT '配置描述',
    is_public TINYINT NOT NULL DEFAULT 0 COMMENT '是否公开: 1-是, 0-否',
    created_at TIMESTAMP NULL DEFAULT CURRENT_TIMESTAMP COMMENT '创建时间',
    updated_at TIMESTAMP NULL DEFAULT CURRENT_TIMESTAMP ON UPDATE CURRENT_TIMESTAMP COMMENT '更新时间',

    UNIQUE KEY uk_config_key (config_key),
    INDEX idx_is_public (is_public)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci COMMENT='系统配置表';
