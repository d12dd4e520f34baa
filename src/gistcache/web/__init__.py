"""HTTP layer: routes, thin handlers, problem+json errors."""
