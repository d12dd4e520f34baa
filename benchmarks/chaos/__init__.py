"""The chaos soak (issue 14): replicas, a private PostgreSQL and the fake GitHub in
processes of their own, a mixed load, and a schedule of faults. See ``run``."""
