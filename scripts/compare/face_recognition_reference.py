#!/usr/bin/env python3
"""face_recognition (dlib) on the same images Doppel's face stage reads, stage by stage, as JSON:
what scripts/test's reference fixture and the accuracy and speed comparisons are made from.

    scripts/compare/face_recognition_reference.py IMAGE... [--upsample 1] [--chips DIR] [--time]

For each image: the CNN detector's boxes (face_recognition's face_locations(model="cnn"):
dlib's mmod rectangles mapped back to the image, left/top/right/bottom, with confidences),
the 5-point landmarks on the first box, the 150x150 chip cut from them (padding 0.25, as
face_encodings does; written as PNG to --chips DIR when given), and the 128-D encoding of that
chip. With --time, seconds per call of face_locations (cnn and hog) and face_encodings.

Needs the PyPI packages dlib-bin, face_recognition (--no-deps) and face-recognition-models
(setuptools<70 gives it pkg_resources): scripts/compare/face_venv makes that environment.
Doppel itself never needs Python.
"""
import argparse
import json
import time

import numpy as np
import face_recognition
import face_recognition_models
import dlib
from PIL import Image


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("images", nargs="+")
    parser.add_argument("--upsample", type=int, default=1)
    parser.add_argument("--chips")
    parser.add_argument("--time", action="store_true")
    args = parser.parse_args()

    detector = dlib.cnn_face_detection_model_v1(face_recognition_models.cnn_face_detector_model_location())
    predictor = dlib.shape_predictor(face_recognition_models.pose_predictor_five_point_model_location())
    encoder = dlib.face_recognition_model_v1(face_recognition_models.face_recognition_model_location())

    out = []
    for index, path in enumerate(args.images):
        image = face_recognition.load_image_file(path)  # RGB, as face_recognition reads files
        detections = detector(image, args.upsample)
        entry = {"image": path, "width": image.shape[1], "height": image.shape[0],
                 "boxes": [{"left": d.rect.left(), "top": d.rect.top(), "right": d.rect.right(), "bottom": d.rect.bottom(),
                            "confidence": d.confidence} for d in detections]}
        if detections:
            box = detections[0].rect
            shape = predictor(image, box)
            entry["landmarks"] = [[shape.part(i).x, shape.part(i).y] for i in range(shape.num_parts)]
            chip = dlib.get_face_chip(image, shape, size=150, padding=0.25)
            if args.chips:
                name = f"{args.chips}/chip{index}.png"
                Image.fromarray(chip).save(name)
                entry["chip"] = name
            entry["encoding"] = list(encoder.compute_face_descriptor(image, shape, 1))
            if args.time:
                locations = face_recognition.face_locations(image, args.upsample, model="cnn")
                entry["seconds"] = {
                    "face_locations_cnn": timed(lambda: face_recognition.face_locations(image, args.upsample, model="cnn")),
                    "face_locations_hog": timed(lambda: face_recognition.face_locations(image, args.upsample, model="hog")),
                    "face_encodings": timed(lambda: face_recognition.face_encodings(image, locations)),
                }
        out.append(entry)
    print(json.dumps(out, indent=1))


def timed(call, repeats=3):
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        call()
        best = min(best, time.perf_counter() - start)
    return best


if __name__ == "__main__":
    main()
