-- The ledger gets its own database beside the control database (POSTGRES_DB).
CREATE DATABASE shuyu_ledger OWNER shuyu;
