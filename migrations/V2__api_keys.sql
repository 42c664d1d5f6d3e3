-- API keys: stored only as SHA-256 hashes (keys are 256-bit random, so a slow KDF buys nothing),
-- each with a role and a human name. Revocation is a timestamp, so audits keep the key's history.
CREATE TABLE api_keys (
    id         uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    name       text NOT NULL CHECK (length(name) BETWEEN 1 AND 200),
    role       text NOT NULL CHECK (role IN ('admin', 'dispatcher', 'analyst')),
    key_hash   bytea NOT NULL UNIQUE CHECK (length(key_hash) = 32),
    key_prefix text NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    revoked_at timestamptz
);
