"""The error table: wire code <-> errno <-> HTTP status <-> exception class."""

from __future__ import annotations

import errno

import pytest
from hypothesis import given
from hypothesis import strategies as st

from client.protocol import errors
from client.protocol.errors import ERROR_CLASSES, DfsError, ErrorBody, ErrorCode

ALL_CODES = list(ErrorCode)
ALL_CLASSES = [ERROR_CLASSES[code] for code in ALL_CODES if code in ERROR_CLASSES]  # a gap fails a test below


def class_id(cls: type[DfsError]) -> str:
    return cls.__name__


# --- the table --------------------------------------------------------------------------------


def test_every_code_has_exactly_one_class() -> None:
    assert set(ERROR_CLASSES) == set(ErrorCode)
    assert len(set(ERROR_CLASSES.values())) == len(ErrorCode), "two codes share a class"


@pytest.mark.parametrize("code", ALL_CODES)
def test_class_declares_its_own_code(code: ErrorCode) -> None:
    assert ERROR_CLASSES[code].code is code


def test_every_dfs_error_subclass_in_the_module_is_in_the_table() -> None:
    """A new error class that is not registered could never cross the wire."""
    declared = {
        value
        for value in vars(errors).values()
        if isinstance(value, type) and issubclass(value, DfsError) and value is not DfsError
    }
    assert declared == set(ERROR_CLASSES.values())


@pytest.mark.parametrize("cls", ALL_CLASSES, ids=class_id)
def test_class_is_an_oserror_with_its_errno(cls: type[DfsError]) -> None:
    exc = cls("something went wrong", path="/a/b")
    assert isinstance(exc, OSError)
    assert isinstance(exc, DfsError)
    assert exc.errno == cls.errno_value
    assert cls.errno_value in errno.errorcode, "errno must be a real errno value"
    assert exc.strerror == "something went wrong"
    assert exc.message == "something went wrong"
    assert exc.path == "/a/b"


@pytest.mark.parametrize("cls", ALL_CLASSES, ids=class_id)
def test_http_status_is_a_client_or_server_error(cls: type[DfsError]) -> None:
    assert 400 <= cls.http_status <= 599


@pytest.mark.parametrize(
    ("cls", "status"),
    [
        (errors.InvalidPathError, 400),
        (errors.InvalidArgumentError, 400),
        (errors.DfsFileNotFoundError, 404),
        (errors.DfsFileExistsError, 409),
        (errors.DfsPermissionError, 403),
        (errors.RequestTooLargeError, 413),
        (errors.NotSupportedError, 501),
        (errors.UnavailableError, 503),
        (errors.DfsTimeoutError, 504),
        (errors.InternalError, 500),
    ],
    ids=lambda value: value.__name__ if isinstance(value, type) else str(value),
)
def test_conventional_http_statuses(cls: type[DfsError], status: int) -> None:
    assert cls.http_status == status


@pytest.mark.parametrize(
    ("cls", "builtin", "errno_value"),
    [
        (errors.DfsFileNotFoundError, FileNotFoundError, errno.ENOENT),
        (errors.DfsFileExistsError, FileExistsError, errno.EEXIST),
        (errors.DfsNotADirectoryError, NotADirectoryError, errno.ENOTDIR),
        (errors.DfsIsADirectoryError, IsADirectoryError, errno.EISDIR),
        (errors.DfsPermissionError, PermissionError, errno.EACCES),
        (errors.DfsTimeoutError, TimeoutError, errno.ETIMEDOUT),
        (errors.UnavailableError, ConnectionError, errno.ECONNREFUSED),
        (errors.InvalidArgumentError, ValueError, errno.EINVAL),
    ],
    ids=lambda value: value.__name__ if isinstance(value, type) else str(value),
)
def test_builtin_exception_bases_are_honoured(cls: type[DfsError], builtin: type[Exception], errno_value: int) -> None:
    assert cls.errno_value == errno_value
    with pytest.raises(builtin):
        raise cls("boom", path="/x")


@pytest.mark.parametrize(
    "cls",
    [
        errors.DirectoryNotEmptyError,
        errors.ChecksumMismatchError,
        errors.ReplicaNotFoundError,
        errors.LeaseConflictError,
        errors.InternalError,
    ],
    ids=class_id,
)
def test_storage_and_lease_errors_are_not_mistaken_for_missing_files(cls: type[DfsError]) -> None:
    exc = cls("boom")
    assert not isinstance(exc, FileNotFoundError)
    assert not isinstance(exc, FileExistsError)
    assert not isinstance(exc, PermissionError)


def test_checksum_mismatch_is_eio_and_422() -> None:
    assert errors.ChecksumMismatchError.errno_value == errno.EIO
    assert errors.ChecksumMismatchError.http_status == 422


# --- str() ------------------------------------------------------------------------------------


def test_str_appends_the_path_when_the_message_lacks_it() -> None:
    assert str(errors.DfsFileNotFoundError("no such file", path="/a/b")) == "no such file: /a/b"


def test_str_does_not_repeat_a_path_already_in_the_message() -> None:
    assert str(errors.DfsFileNotFoundError("/a/b does not exist", path="/a/b")) == "/a/b does not exist"


def test_str_without_path_is_the_message() -> None:
    assert str(errors.InternalError("kaboom")) == "kaboom"


# --- wire round trip --------------------------------------------------------------------------

messages = st.text(max_size=200)
optional_paths = st.none() | st.text(max_size=100)


@pytest.mark.parametrize("cls", ALL_CLASSES, ids=class_id)
@given(message=messages, path=optional_paths)
def test_body_round_trip_rebuilds_the_same_error(cls: type[DfsError], message: str, path: str | None) -> None:
    body = cls(message, path=path).to_body()
    assert body.code is cls.code
    assert body.errno == cls.errno_value

    rebuilt = errors.error_from_body(body)
    assert type(rebuilt) is cls
    assert rebuilt.message == message
    assert rebuilt.path == path
    assert rebuilt.errno == cls.errno_value


@pytest.mark.parametrize("cls", ALL_CLASSES, ids=class_id)
def test_body_survives_json_and_error_from_response(cls: type[DfsError]) -> None:
    """What a server renders as JSON comes back as the same class on the client."""
    original = cls("it failed", path="/dir/file")
    wire = original.to_body().model_dump_json()
    rebuilt = errors.error_from_response(cls.http_status, ErrorBody.model_validate_json(wire).model_dump(mode="json"))
    assert type(rebuilt) is cls
    assert (rebuilt.message, rebuilt.path) == ("it failed", "/dir/file")


def test_wire_body_wins_over_the_http_status() -> None:
    payload = errors.LeaseConflictError("held by someone", path="/f").to_body().model_dump(mode="json")
    rebuilt = errors.error_from_response(500, payload)
    assert isinstance(rebuilt, errors.LeaseConflictError)


# --- error_from_response: payloads that are not our wire shape --------------------------------

FOREIGN_PAYLOADS = [
    None,
    "",
    "<html>Bad Gateway</html>",
    {},
    {"detail": "Not Found"},
    {"code": "NO_SUCH_CODE", "errno": 5, "message": "x"},
    {"code": "FILE_NOT_FOUND"},  # our shape, but incomplete
    ["a", "list"],
    b"raw bytes",
]


@pytest.mark.parametrize("payload", FOREIGN_PAYLOADS, ids=repr)
@pytest.mark.parametrize(
    ("status", "expected"),
    [
        (404, errors.DfsFileNotFoundError),
        (502, errors.UnavailableError),
        (503, errors.UnavailableError),
        (504, errors.DfsTimeoutError),
        (400, errors.ProtocolError),
        (401, errors.ProtocolError),
        (409, errors.ProtocolError),
        (422, errors.ProtocolError),
        (499, errors.ProtocolError),
        (500, errors.InternalError),
        (501, errors.InternalError),
        (599, errors.InternalError),
    ],
)
def test_foreign_payload_maps_by_status(payload: object, status: int, expected: type[DfsError]) -> None:
    exc = errors.error_from_response(status, payload)
    assert type(exc) is expected
    assert str(status) in exc.message


def test_foreign_text_payload_is_kept_in_the_message() -> None:
    exc = errors.error_from_response(503, "upstream connect error")
    assert "upstream connect error" in exc.message


def test_empty_payload_falls_back_to_the_status() -> None:
    assert "HTTP 404" in errors.error_from_response(404, None).message
    assert "HTTP 500" in errors.error_from_response(500, {}).message


def test_huge_foreign_payload_is_truncated() -> None:
    exc = errors.error_from_response(500, "x" * 100_000)
    assert len(exc.message) < 400


@given(st.integers(400, 599), st.text(max_size=500) | st.none())
def test_error_from_response_always_returns_a_dfs_error(status: int, payload: str | None) -> None:
    exc = errors.error_from_response(status, payload)
    assert isinstance(exc, DfsError)
    assert isinstance(exc, OSError)


@pytest.mark.parametrize("code", list(ErrorCode))
def test_errors_survive_pickling(code: ErrorCode) -> None:
    """Errors cross process boundaries (multiprocessing, dask) intact."""
    import pickle

    cls = ERROR_CLASSES[code]
    original = cls("something broke", path="/a/b")
    copy = pickle.loads(pickle.dumps(original))
    assert type(copy) is cls
    assert (copy.message, copy.path, copy.errno) == (original.message, original.path, original.errno)
