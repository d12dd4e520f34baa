"""HTTP layer: middlewares, problem+json, HTTP caching helpers, and the JSON API (api/)."""
