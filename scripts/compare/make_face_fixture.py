#!/usr/bin/env python3
"""Writes Tests/DoppelModelTests/Fixtures/faces/: a few photos and what face_recognition (dlib)
makes of each, stage by stage, for DlibFaceTests to compare Doppel's face stage with.

    "$(scripts/compare/face_venv)" scripts/compare/make_face_fixture.py ../shared/data/att_faces

The photos: four ORL faces (92x112 gray, two of one person, one whose box reaches past the left edge) and a
480x320 colour photo made here with two ORL faces pasted at 1x and 2.5x onto a gradient (a
face large enough for the chip to be read from a pyramid level). For each: the CNN
detector's boxes with one upsampling (face_locations(model="cnn")), the 5-point landmarks on
the first box, the 150x150 chip from them (padding 0.25, saved as PNG) and its 128-D encoding.
"""
import json
import os
import shutil
import sys

import numpy as np
from PIL import Image
import dlib
import face_recognition
import face_recognition_models

HERE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "Tests", "DoppelModelTests", "Fixtures", "faces")


def composite(orl):
    y, x = np.mgrid[0:320, 0:480]
    canvas = np.stack([60 + x * 0.3, 90 + y * 0.4, 140 - x * 0.1], axis=-1).clip(0, 255).astype(np.uint8)
    photo = Image.fromarray(canvas)
    small = Image.open(os.path.join(orl, "s4", "1.pgm")).convert("RGB")
    large = Image.open(os.path.join(orl, "s5", "2.pgm")).convert("RGB").resize((230, 280), Image.BILINEAR)
    photo.paste(small, (40, 120))
    photo.paste(large, (220, 20))
    return photo


def main():
    orl = sys.argv[1]
    os.makedirs(HERE, exist_ok=True)
    names = []
    for person, index in [("s1", 1), ("s1", 2), ("s2", 1), ("s3", 5)]:
        name = f"{person}_{index}.pgm"
        shutil.copy(os.path.join(orl, person, f"{index}.pgm"), os.path.join(HERE, name))
        names.append(name)
    composite(orl).save(os.path.join(HERE, "two_faces.png"))
    names.append("two_faces.png")

    detector = dlib.cnn_face_detection_model_v1(face_recognition_models.cnn_face_detector_model_location())
    predictor = dlib.shape_predictor(face_recognition_models.pose_predictor_five_point_model_location())
    encoder = dlib.face_recognition_model_v1(face_recognition_models.face_recognition_model_location())
    reference = []
    for name in names:
        image = face_recognition.load_image_file(os.path.join(HERE, name))
        detections = detector(image, 1)
        entry = {"image": name, "boxes": [{"left": d.rect.left(), "top": d.rect.top(), "right": d.rect.right(), "bottom": d.rect.bottom(),
                                            "confidence": d.confidence} for d in detections], "faces": []}
        for i, detection in enumerate(detections):
            shape = predictor(image, detection.rect)
            chip_name = f"{os.path.splitext(name)[0]}_chip{i}.png"
            Image.fromarray(dlib.get_face_chip(image, shape, size=150, padding=0.25)).save(os.path.join(HERE, chip_name))
            entry["faces"].append({"landmarks": [[shape.part(j).x, shape.part(j).y] for j in range(shape.num_parts)],
                                   "chip": chip_name, "encoding": list(encoder.compute_face_descriptor(image, shape, 1))})
        reference.append(entry)
    with open(os.path.join(HERE, "reference.json"), "w") as out:
        json.dump({"made_by": f"scripts/compare/make_face_fixture.py, dlib {dlib.__version__}, face_recognition {face_recognition.__version__}",
                   "upsample": 1, "images": reference}, out, indent=1)


if __name__ == "__main__":
    main()
