"""The Model Context Protocol front end: the cache's lists, searches and files as tools and
resources for agents, over stdio (``gistcache mcp``) and streamable HTTP (``/mcp``).

One more front end over the same services, as the page and the command line are:
``answers`` shapes the use cases' results into answers sized for a model's context,
``server`` names them as tools and resources on the official SDK, ``http`` serves that
server from the aiohttp application, ``stdio`` as a local command (docs/mcp.md)."""
