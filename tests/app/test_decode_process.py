"""face_rec.decode_process: uploads decoded in a process of their own, under the kernel's CPU and
memory limits; over either, a clear 413, and the next upload is served by a fresh process."""

import os

import numpy as np
import pytest
from PIL import Image

from face_rec.decode import ImageError, load_photo
from face_rec.decode_process import DecodeProcess

from .conftest import encode

MAX = 40_000_000


@pytest.fixture(scope="module")
def phone(photos):
    """A 12 MP phone photo (obama3.jpg at 3024x4032), as bench_detection.py makes it."""
    return encode(Image.open(photos / "obama3.jpg").resize((3024, 4032)), "JPEG", quality=90)


@pytest.fixture
def decoder():
    decoder = DecodeProcess(cpu_seconds=0.9, memory_mb=250)
    yield decoder
    decoder.close()


def test_a_photo_decodes_as_it_does_in_process(decoder, phone, photos):
    for data, min_side in ((phone, 1000), ((photos / "obama2.jpg").read_bytes(), 1000), (phone, None)):
        ours, theirs = decoder.load_photo(data, MAX, min_side), load_photo(data, MAX, min_side)
        assert (ours.width, ours.height, ours.scale) == (theirs.width, theirs.height, theirs.scale)
        assert np.array_equal(ours.pixels, theirs.pixels) and ours.pixels.flags.writeable
    assert 0 < decoder.last_cost.cpu_s < 0.9 and not decoder.last_cost.over_limit


def test_refusals_come_back_with_their_status_and_words(decoder):
    for data, status, words in ((b"GIF89a" + bytes(20), 415, "GIF images are not accepted"),
                                (b"\xff\xd8\xff" + bytes(2000), 400, "data between its segments"),
                                (b"", 400, "empty")):
        with pytest.raises(ImageError) as error:
            decoder.load_photo(data, MAX, 1000)
        assert error.value.status == status and words in str(error.value)


def test_over_the_cpu_limit_the_kernel_ends_the_decode_and_the_next_upload_is_served(phone, photos):
    decoder = DecodeProcess(cpu_seconds=0.02, memory_mb=250)  # the 12 MP photo takes ~0.1 s
    try:
        first = decoder.pid
        with pytest.raises(ImageError) as error:
            decoder.load_photo(phone, MAX, None)
        assert error.value.status == 413 and "costs too much to decode" in str(error.value)
        assert decoder.last_cost.over_limit
        assert not os.path.exists(f"/proc/{first}")  # ended and reaped: nothing left behind
        small = encode(Image.open(photos / "obama2.jpg").resize((300, 157)), "JPEG")
        assert decoder.load_photo(small, MAX, 1000).pixels.shape == (157, 300, 3)
        assert decoder.pid != first
    finally:
        decoder.close()


def test_over_the_memory_limit_the_decode_is_refused_and_the_next_upload_is_served(phone, photos):
    decoder = DecodeProcess(cpu_seconds=5, memory_mb=24)  # the full-size photo needs 36 MB of pixels
    try:
        with pytest.raises(ImageError) as error:
            decoder.load_photo(phone, MAX, None)
        assert error.value.status == 413 and "costs too much to decode" in str(error.value)
        assert decoder.last_cost.over_limit
        assert decoder.load_photo((photos / "obama2.jpg").read_bytes(), MAX, 1000).pixels.size > 0
    finally:
        decoder.close()


def test_the_decode_process_holds_no_dlib_and_dumps_no_core(decoder, photos):
    decoder.load_photo((photos / "obama2.jpg").read_bytes(), MAX, 1000)
    pid = decoder.pid
    maps = open(f"/proc/{pid}/maps").read()
    assert "_imaging" in maps and "dlib" not in maps
    limits = open(f"/proc/{pid}/limits").read()
    assert next(line for line in limits.splitlines() if line.startswith("Max core file size")).split()[4:6] == ["0", "0"]
    address_space = next(line for line in limits.splitlines() if line.startswith("Max address space")).split()
    assert address_space[3] != "unlimited"


def test_a_forked_worker_starts_its_own_decode_process(decoder, photos):
    data = (photos / "obama2.jpg").read_bytes()
    decoder.load_photo(data, MAX, 1000)
    parent = decoder.pid
    read, write = os.pipe()
    child = os.fork()
    if child == 0:  # as uWSGI forks its workers from the master
        try:
            ok = decoder.load_photo(data, MAX, 1000).width == load_photo(data, MAX).width and decoder.pid not in (parent, 0)
            decoder.close()
            os.write(write, b"1" if ok else b"0")
        finally:
            os._exit(0)
    os.close(write)
    assert os.read(read, 1) == b"1"
    os.waitpid(child, 0)
    assert decoder.pid == parent and decoder.load_photo(data, MAX, 1000).width == load_photo(data, MAX).width


def test_the_match_api_answers_413_over_a_limit_and_serves_the_next_match(app, upload, phone, photos):
    from face_rec.metrics import DECODES_OVER_LIMIT
    over = DECODES_OVER_LIMIT._value.get()
    app.config.update(DECODE_CPU_SECONDS=0.02)
    response = upload(phone)
    assert response.status_code == 413
    assert "costs too much to decode" in response.json["error"]["message"]
    assert DECODES_OVER_LIMIT._value.get() == over + 1  # counted for on call (Prometheus)
    app.extensions["face_rec_decoder"].cpu_seconds = 0.9
    response = upload((photos / "obama2.jpg").read_bytes())
    assert response.status_code == 200 and response.json["faces"][0]["matches"][0]["member"] == "obama"
    assert upload(b"not a photo").status_code == 415 and DECODES_OVER_LIMIT._value.get() == over + 1
    app.extensions["face_rec_decoder"].close()


def test_the_upload_is_decoded_in_the_decode_process_not_the_worker(app, upload, photos):
    upload((photos / "obama2.jpg").read_bytes())
    decoder = app.extensions["face_rec_decoder"]
    assert decoder.last_cost is not None and decoder.last_cost.cpu_s > 0
    decoder.close()
