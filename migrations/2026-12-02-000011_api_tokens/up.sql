-- Per-user API tokens (`api_tokens`), beyond the seed: how the HTTP API
-- knows who calls it.
--
-- A token is `vc_` and 64 hex characters of OS randomness
-- (`shared::tokens::generate_token`), shown once when created. Only its
-- SHA-256 (`token_hash`, hex) is stored, so a copy of this table lets no one
-- call the API; a fast hash is enough for a 244-bit random secret (no
-- password to guess, nothing for a slow KDF to protect). `token_prefix`
-- (`vc_` and the first 8 hex characters) is what lists show, so a user can
-- tell their tokens apart without the secret.
--
-- `token_hash` is ASCII with a binary collation: hex only, compared
-- exactly, a 64-byte key.
--
-- Revoking sets `revoked_at` (the row stays, for the audit trail);
-- `last_used_at` is written at most once a minute per token, so requests do
-- not each write a row. `is_operator` tokens may act on every user's tasks.
-- Deleting a user deletes their tokens.

CREATE TABLE api_tokens (
    id BIGINT PRIMARY KEY AUTO_INCREMENT COMMENT '令牌ID',
    user_id BIGINT NOT NULL COMMENT '用户ID',
    name VARCHAR(100) NULL COMMENT 'what the token is for (free text)',
    token_prefix VARCHAR(16) NOT NULL COMMENT 'first characters of the token, shown in lists',
    token_hash CHAR(64) CHARACTER SET ascii COLLATE ascii_bin NOT NULL COMMENT 'SHA-256 of the whole token, lowercase hex; the token itself is never stored',
    is_operator TINYINT(1) NOT NULL DEFAULT 0 COMMENT 'operator token: may act for every user',
    created_at TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP COMMENT '创建时间',
    last_used_at TIMESTAMP NULL COMMENT 'last authenticated request (at most once a minute)',
    revoked_at TIMESTAMP NULL COMMENT 'when revoked (NULL: valid)',

    UNIQUE KEY uk_token_hash (token_hash),
    CONSTRAINT fk_api_tokens_user FOREIGN KEY (user_id) REFERENCES users(id) ON DELETE CASCADE,
    INDEX idx_user_id (user_id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci COMMENT='API令牌表';
