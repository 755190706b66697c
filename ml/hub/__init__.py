"""The audience hub: a small web application where marketers find, understand and download
audiences, analysts read their definitions and models, and the privacy officer reads the
consent, erasure and audit logs and files erasure requests.

Dagster-free, like the rest of the library. The pieces, each with one job:

- `snapshot`: what a successful run publishes for the hub (Parquet tables and copies of the
  export files and charts), swapped in atomically; the hub reads nothing else of the pipeline;
- `reader`: the current snapshot, as the pages and downloads read it;
- `store`: the hub's own SQLite database (users, sessions, sign-in failures, its audit log);
- `roles`: who may see what; `web`: sessions, CSRF, security headers, templates;
- `app`, `audience_pages`, `privacy_pages`: the routes; `words`, `charts`: rules in words and
  server-made SVG charts; `erasure`: filing an erasure request as a landing file;
- `python -m ml.hub`: `serve`, `publish` and `users add|list|set-role|set-password|unlock|remove`.
"""
