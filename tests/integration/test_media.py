"""Photos of listings on a real database and a real directory: files first, then the row; a
refused or failed upload leaves neither; only the seller (or their agent) adds and removes."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import func, select

from domain import AuditEvent, ProductPhoto
from services import catalog, media
from services.errors import Forbidden, NotFound, ValidationError
from tests.factories import World, build_world, consent, jpeg, listing, png_header


@pytest.fixture()
def world(session, admin, make_user) -> World:  # type: ignore[no-untyped-def]
    return build_world(session, admin, make_user)


@pytest.fixture()
def store(tmp_path: Path) -> media.LocalStorage:
    return media.LocalStorage(tmp_path / "media")


def files(store: media.LocalStorage) -> list[str]:
    return sorted(p.relative_to(store.root).as_posix() for p in store.root.rglob("*") if p.is_file())


def photo_rows(session) -> int:  # type: ignore[no-untyped-def]
    return session.scalar(select(func.count()).select_from(ProductPhoto)) or 0


@pytest.fixture()
def product(session, world):  # type: ignore[no-untyped-def]
    return catalog.create_product(session, world.farmer, listing(world))


class TestAddingAPhoto:
    def test_the_variants_are_stored_under_a_generated_key(self, session, world, store, product):
        photo = media.add_photo(session, store, world.farmer, product.id, jpeg((1200, 900)))
        assert media.PHOTO_KEY_RE.match(photo.key)
        assert (photo.width, photo.height, photo.position) == (1200, 900, 0)
        assert files(store) == sorted(
            f"{photo.key}/{w}.{ext}" for w in (240, 480, 960) for ext in ("jpg", "webp")
        )
        assert media.variant_keys(photo) and all(store.exists(k) for k in media.variant_keys(photo))
        event = session.scalars(select(AuditEvent).order_by(AuditEvent.id.desc())).first()
        assert (event.action, event.actor_id, event.entity_id) == (
            "add_photo",
            world.farmer.id,
            str(product.id),
        )

    def test_photos_come_in_order(self, session, world, store, product):
        first = media.add_photo(session, store, world.farmer, product.id, jpeg((400, 300)))
        second = media.add_photo(session, store, world.farmer, product.id, jpeg((400, 300)))
        assert (first.position, second.position) == (0, 1)
        assert first.key != second.key

    @pytest.mark.parametrize(
        "data",
        [b"just some text, named photo.jpg by someone", png_header(20000, 20000), b""],
        ids=["text", "bomb", "empty"],
    )
    def test_a_refused_upload_writes_nothing(self, session, world, store, product, data):
        with pytest.raises(ValidationError):
            media.add_photo(session, store, world.farmer, product.id, data)
        assert files(store) == [] and photo_rows(session) == 0

    def test_an_oversized_upload_writes_nothing(self, session, world, store, product):
        with pytest.raises(ValidationError) as info:
            media.add_photo(session, store, world.farmer, product.id, jpeg((400, 300)), max_bytes=1000)
        assert "too large" in str(info.value.message)
        assert files(store) == [] and photo_rows(session) == 0

    def test_when_the_row_cannot_be_written_the_files_go_too(
        self, session, world, store, product, monkeypatch
    ):
        def broken_commit() -> None:
            raise RuntimeError("database went away")

        monkeypatch.setattr(session, "commit", broken_commit)
        with pytest.raises(RuntimeError):
            media.add_photo(session, store, world.farmer, product.id, jpeg((400, 300)))
        monkeypatch.undo()
        assert files(store) == []
        assert photo_rows(session) == 0

    def test_at_most_six_photos(self, session, world, store, product):
        for _ in range(media.MAX_PHOTOS):
            media.add_photo(session, store, world.farmer, product.id, jpeg((200, 200), gps=False))
        stored = files(store)
        with pytest.raises(ValidationError) as info:
            media.add_photo(session, store, world.farmer, product.id, jpeg((200, 200), gps=False))
        assert "at most 6" in str(info.value.message)
        assert files(store) == stored and photo_rows(session) == media.MAX_PHOTOS

    def test_another_farmer_cannot_add_a_photo(self, session, world, store, product):
        with pytest.raises(Forbidden):
            media.add_photo(session, store, world.neighbour_farmer, product.id, jpeg((400, 300)))
        assert files(store) == [] and photo_rows(session) == 0

    def test_the_farmers_agent_can(self, session, world, store, product):
        consent(session, world.agent, world.farmer, world.point)
        media.add_photo(session, store, world.agent, product.id, jpeg((400, 300)))
        assert photo_rows(session) == 1


class TestRemovingAndOrdering:
    def test_remove_deletes_the_row_then_the_files(self, session, world, store, product):
        keep = media.add_photo(session, store, world.farmer, product.id, jpeg((400, 300)))
        gone = media.add_photo(session, store, world.farmer, product.id, jpeg((400, 300)))
        media.remove_photo(session, store, world.farmer, product.id, keep.id)
        session.expire_all()
        assert [p.id for p in catalog.get_product(session, product.id).photos] == [gone.id]
        assert all(f.startswith(gone.key) for f in files(store))
        assert session.get(ProductPhoto, gone.id).position == 0

    def test_another_farmer_cannot_remove_and_nothing_changes(self, session, world, store, product):
        photo = media.add_photo(session, store, world.farmer, product.id, jpeg((400, 300)))
        stored = files(store)
        with pytest.raises(Forbidden):
            media.remove_photo(session, store, world.neighbour_farmer, product.id, photo.id)
        assert files(store) == stored and photo_rows(session) == 1

    def test_a_photo_of_another_product_is_not_found(self, session, world, store, product):
        other = catalog.create_product(session, world.farmer, listing(world, name="另一个"))
        photo = media.add_photo(session, store, world.farmer, other.id, jpeg((400, 300)))
        with pytest.raises(NotFound):
            media.remove_photo(session, store, world.farmer, product.id, photo.id)
        with pytest.raises(NotFound):
            media.move_photo(session, world.farmer, product.id, photo.id, 0)

    def test_make_a_photo_the_main_one(self, session, world, store, product):
        a, b, c = (
            media.add_photo(session, store, world.farmer, product.id, jpeg((300, 300))) for _ in range(3)
        )
        ordered = media.move_photo(session, world.farmer, product.id, c.id, 0)
        assert [p.id for p in ordered] == [c.id, a.id, b.id]
        assert [p.position for p in ordered] == [0, 1, 2]
