"""Names and ids from outside are matched to their very end.

Python's `$` also matches before a trailing newline, so `re.match(r"^[a-z]+$", "x\n")` succeeds;
every pattern that validates outside input ends in `\\Z` instead. Each case here was accepted
before (a dataset, user or column name, an authorization id, a content hash or a tile path with a
newline after it).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from hub.catalog.exceptions import InvalidInput
from hub.catalog.validation import column_name, dataset_name, user_name
from hub.domain.errors import DomainError
from hub.domain.store import check_dataset_name
from hub.gateway.pseudonyms import PseudonymKeyError, PseudonymKeys
from hub.regulator_actions import check_suspension_form
from ledger.exceptions import FormatError
from ledger.tiles import parse_tile_path
from release_review.quarantine import ContentStore
from release_review.exceptions import InvalidInput as ReviewInvalidInput

SHA = "ab" * 32


@pytest.mark.parametrize("check", [dataset_name, column_name, user_name])
def test_catalog_names(check) -> None:  # type: ignore[no-untyped-def]
    assert check("residents") == "residents"
    with pytest.raises(InvalidInput):
        check("residents\n")


def test_domain_store_dataset_names() -> None:
    assert check_dataset_name("residents") == "residents"
    with pytest.raises(DomainError):
        check_dataset_name("residents\n")


def test_authorization_ids(tmp_path: Path) -> None:
    keys = PseudonymKeys(tmp_path)
    assert len(keys.key_for("auth-1")) >= 16
    with pytest.raises(PseudonymKeyError):
        keys.key_for("auth-1\n")
    assert check_suspension_form("auth-1", "a reason") == []
    assert check_suspension_form("auth-1\n", "a reason") != []


def test_content_hashes_and_tile_paths(tmp_path: Path) -> None:
    store = ContentStore(tmp_path)
    assert store.path(SHA).name == SHA
    with pytest.raises(ReviewInvalidInput):
        store.path(SHA + "\n")
    assert parse_tile_path("tile/0/001")
    with pytest.raises(FormatError):
        parse_tile_path("tile/0/001\n")

