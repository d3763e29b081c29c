"""Dependencies of the ledger service's routes."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from ledger.service.reader import LedgerReader


def get_reader(request: Request) -> LedgerReader:
    return request.app.state.reader


ReaderDep = Annotated[LedgerReader, Depends(get_reader)]
