-- Run by the postgres image once, when its data volume is new, as POSTGRES_USER,
-- who then owns a database per site (each site's DATABASE_URL in docker-compose.yml).
CREATE DATABASE liveblog;
CREATE DATABASE chat;
CREATE DATABASE sketchpad;
