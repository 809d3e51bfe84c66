"""Framing over a growing buffer: any chunking, version and size checks."""

import random

import pytest

from estreamer.errors import FramingError
from estreamer.protocol.framing import Framer, encode_frame
from estreamer.protocol.messages import encode_bundle, encode_null


def stream_of_messages(count: int, rng: random.Random) -> list[bytes]:
    messages = []
    for i in range(count):
        if i % 3 == 0:
            messages.append(encode_null())
        else:
            payload = rng.randbytes(rng.randrange(0, 300))
            messages.append(encode_bundle(1, i, [payload]))
    return messages


@pytest.mark.parametrize("seed", range(5))
def test_any_chunking_gives_the_same_frames(seed):
    rng = random.Random(seed)
    messages = stream_of_messages(40, rng)
    data = b"".join(messages)
    framer = Framer()
    frames = []
    pos = 0
    while pos < len(data):
        step = rng.choice([1, 2, 7, 8, 9, 100, 4096])
        framer.feed(data[pos : pos + step])
        pos += step
        frames.extend(framer.frames())
    assert [encode_frame(f.message_type, f.body) for f in frames] == messages
    offsets = [f.offset for f in frames]
    assert offsets == [sum(len(m) for m in messages[:i]) for i in range(len(messages))]
    assert framer.buffered == 0


def test_one_byte_at_a_time():
    data = encode_null() + encode_frame(4, b"abc")
    framer = Framer()
    seen = []
    for byte in data:
        framer.feed(bytes([byte]))
        seen.extend(framer.frames())
    assert [(f.message_type, f.body) for f in seen] == [(0, b""), (4, b"abc")]


def test_wrong_header_version_is_skipped_with_a_clear_error():
    framer = Framer()
    framer.feed(b"\x00\x02\x00\x04\x00\x00\x00\x02hi" + encode_null())
    with pytest.raises(FramingError, match="version is 2") as caught:
        framer.next_frame()
    assert caught.value.recoverable and caught.value.offset == 0
    frame = framer.next_frame()
    assert frame is not None and frame.message_type == 0 and frame.offset == 10


def test_absurd_length_is_refused_before_allocating():
    framer = Framer(max_body=1024)
    framer.feed(b"\x00\x01\x0f\xa2\xff\xff\xff\xf0")
    with pytest.raises(FramingError, match="over the 1024-byte limit") as caught:
        framer.next_frame()
    assert not caught.value.recoverable
    with pytest.raises(FramingError):
        framer.feed(encode_null())


def test_incomplete_message_waits_for_more():
    framer = Framer()
    framer.feed(encode_frame(4, b"x" * 50)[:30])
    assert framer.next_frame() is None
    assert framer.buffered == 30
