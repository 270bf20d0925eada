"""The operator console: server-rendered pages under `/console/` on the agent's HTTP server.

`web.py` builds the application (security headers, authentication, CSRF); `pages.py` holds the
pages; `auth.py` and `alb.py` decide who is asking. Off unless `AIOPS_CONSOLE_AUTH` says how to
authenticate.
"""
