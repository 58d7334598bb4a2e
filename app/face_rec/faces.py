"""Faces in a photo: where they are (dlib's HOG detector, on a copy resized so the smallest
promised face fills its window) and their 128-d encodings (face_recognition)."""

import numpy as np
from PIL import Image, ImageFile

from face_rec.decode import load_photo


def load_models():
    """face_recognition, with dlib's models loaded (~100 MB, a few seconds): imported on first
    use, so a command with nothing to encode does not pay for it."""
    import face_recognition  # noqa: PLC0415

    # face_recognition turns this on when imported; we want truncated uploads refused.
    ImageFile.LOAD_TRUNCATED_IMAGES = False
    return face_recognition


# dlib's frontal face detector scans 80x80 px windows over an image pyramid: the smallest face
# it finds is 80 px of the image it is given.
DETECTOR_WINDOW = 80


def detection_limit(min_face_percent):
    """The longest side detection needs when faces may be as small as min_face_percent of a
    photo's longest side: 1000 px for 8 %. Bigger photos are shrunk to it (and decoded no
    larger than needed); see detection_side."""
    return max(1, round(DETECTOR_WINDOW * 100 / min_face_percent))


def detection_side(longest, min_face_percent, min_face_pixels):
    """The longest side a photo is resized to before detection, so that a face of
    min_face_percent of its longest side, but never one under min_face_pixels of the photo,
    fills the detector's window. A large photo shrinks to detection_limit; a small one grows,
    at most by DETECTOR_WINDOW / min_face_pixels (2x for 40 px, as dlib's usual upsample)."""
    return max(1, min(detection_limit(min_face_percent), round(longest * DETECTOR_WINDOW / min_face_pixels)))


def face_locations(image, min_face_percent, min_face_pixels):
    """Face boxes (top, right, bottom, left) in the image's own pixels.

    HOG detection costs grow with the pixels scanned, and the detector's own pyramid already
    looks for every face bigger than its window, so the photo is resized once to the side
    where the smallest promised face fills that window and scanned with no upsampling: a
    1000 px scan for faces of 8 % of the side instead of the 2048 px of 1024 px upsampled
    once (about 4x less CPU; every face of 8 % or more is found the same way)."""
    height, width = image.shape[:2]
    side = detection_side(max(height, width), min_face_percent, min_face_pixels)
    scale = side / max(height, width)
    if scale != 1.0:
        scanned = np.asarray(Image.fromarray(image).resize(
            (max(1, round(width * scale)), max(1, round(height * scale))), Image.Resampling.BILINEAR))
    else:
        scanned = image
    boxes = load_models().face_locations(scanned, number_of_times_to_upsample=0)
    return [_scale_box(box, 1.0 / scale, width, height) for box in boxes]


def find_faces(data, max_pixels, min_face_percent, min_face_pixels, decode=load_photo):
    """(photo, face boxes) of an uploaded photo's bytes: decoded no larger than detection needs,
    then detected. The boxes are in photo.pixels (photo.photo_box gives them in the photo's own
    pixels). Raises ImageError for what load_photo refuses. decode: load_photo, in this process
    (cast photos), or a DecodeProcess's (uploads)."""
    photo = decode(data, max_pixels, min_side=detection_limit(min_face_percent))
    return photo, face_locations(photo.pixels, min_face_percent, min_face_pixels)


def _scale_box(box, factor, width, height):
    top, right, bottom, left = box
    return (max(0, round(top * factor)), min(width, round(right * factor)),
            min(height, round(bottom * factor)), max(0, round(left * factor)))


def face_encodings(image, boxes):
    """One 128-d float32 encoding per box, computed on the full-size image."""
    return [np.asarray(e, dtype=np.float32) for e in load_models().face_encodings(image, boxes)]
