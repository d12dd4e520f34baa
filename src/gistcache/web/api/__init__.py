"""The JSON API: routes, thin handlers by resource, and the OpenAPI document."""
