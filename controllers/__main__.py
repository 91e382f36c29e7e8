"""`python -m controllers --help`: run the operator."""

from __future__ import annotations

import asyncio

from controllers.core.settings import parse_settings
from controllers.operator import CONNECTION_SCHEMAS, run


def main() -> None:
    asyncio.run(run(parse_settings(schemas=CONNECTION_SCHEMAS)))


if __name__ == "__main__":
    main()
