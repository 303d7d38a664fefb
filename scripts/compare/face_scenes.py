#!/usr/bin/env python3
"""Faces in photos rather than crops: a scene set made from ORL faces, scored through a running
`doppel serve` of a face model (detection recall and precision, then rank-1 and EER of the
faces found against the same people's crops); and the photos the speed and bad-input figures
of docs/models.md use.

    python=$(scripts/compare/face_venv)
    "$python" scripts/compare/face_scenes.py make ../shared/data/att_faces /tmp/scenes [--scenes 150]
    DOPPEL_OPEN=1 .build/release/doppel serve --model models/faces.safetensors --port 8093 &
    "$python" scripts/compare/face_scenes.py score ../shared/data/att_faces /tmp/scenes http://127.0.0.1:8093
    "$python" scripts/compare/face_scenes.py photos ../shared/data/att_faces /tmp/photos

`photos` writes one_face.png and eight_faces.png (640x480), crowd200.png (1600x1240, 200 faces
of 80x97), photo40mp.png (7280x5480, one face) and one_pixel.png.

A scene is 640x480 with 1-4 ORL faces (92x112 each, scaled 0.5-3x, not overlapping) pasted
at random places on a plain, noisy or textured background; some are blurred, some made
brighter or darker. scenes.json keeps each pasted rectangle with its person and image.

Detection: a box is a hit when its centre lies in a pasted rectangle not yet hit and its
area is 15%-150% of the rectangle's (dlib's box covers the face, about half of an ORL
image). Recall is per pasted face, reported by the face's size (the pasted width times 0.75,
what the detector's box measures on an unscaled ORL image); precision is per box.

Recognition: image 1 of each person is the gallery; every face found in the scenes (and the
same ORL image as a crop) is a query. Rank-1: the nearest gallery face is the same person.
EER over all query-gallery distances. Needs numpy and Pillow (scripts/compare's venv).
"""
import argparse
import base64
import json
import os
import random
import sys
import urllib.request

import numpy as np
from PIL import Image, ImageFilter

WIDTH, HEIGHT = 640, 480
PEOPLE = [f"s{i}" for i in range(1, 31)]


def background(rng, kind):
    if kind == "plain":
        color = rng.integers(30, 226, size=3)
        return np.broadcast_to(color, (HEIGHT, WIDTH, 3)).astype(np.float32)
    if kind == "noisy":
        color = rng.integers(60, 196, size=3)
        return np.clip(color + rng.normal(0, 25, size=(HEIGHT, WIDTH, 3)), 0, 255).astype(np.float32)
    # textured: a few oriented waves and blotches of blurred noise, in colour
    y, x = np.mgrid[0:HEIGHT, 0:WIDTH].astype(np.float32)
    canvas = np.zeros((HEIGHT, WIDTH, 3), np.float32)
    for c in range(3):
        for _ in range(3):
            fx, fy, phase = rng.uniform(-0.08, 0.08), rng.uniform(-0.08, 0.08), rng.uniform(0, 6.3)
            canvas[..., c] += rng.uniform(15, 40) * np.sin(fx * x + fy * y + phase)
    blotches = Image.fromarray(rng.integers(0, 256, size=(HEIGHT // 8, WIDTH // 8, 3), dtype=np.uint8)).resize((WIDTH, HEIGHT), Image.BICUBIC)
    canvas += 0.6 * (np.asarray(blotches, np.float32) - 128)
    return np.clip(canvas + rng.integers(80, 176, size=3), 0, 255)


def make(orl, out, scenes, seed):
    rng = np.random.default_rng(seed)
    os.makedirs(out, exist_ok=True)
    records = []
    for n in range(scenes):
        kind = ["plain", "noisy", "textured"][n % 3]
        canvas = background(rng, kind)
        faces, rects = int(rng.integers(1, 5)), []
        for _ in range(faces):
            for _attempt in range(50):
                scale = float(rng.uniform(0.5, 3.0))
                w, h = int(round(92 * scale)), int(round(112 * scale))
                if w > WIDTH or h > HEIGHT:
                    continue
                left, top = int(rng.integers(0, WIDTH - w + 1)), int(rng.integers(0, HEIGHT - h + 1))
                if all(left + w <= r["left"] or r["left"] + r["width"] <= left or top + h <= r["top"] or r["top"] + r["height"] <= top for r in rects):
                    person, image = PEOPLE[int(rng.integers(0, 30))], int(rng.integers(2, 11))
                    face = Image.open(os.path.join(orl, person, f"{image}.pgm")).convert("RGB").resize((w, h), Image.BILINEAR)
                    pixels = np.asarray(face, np.float32)
                    if rng.random() < 0.3:
                        pixels = np.asarray(face.filter(ImageFilter.GaussianBlur(float(rng.uniform(0.5, 1.5)))), np.float32)
                    if rng.random() < 0.4:
                        pixels = np.clip(pixels * rng.uniform(0.6, 1.4), 0, 255)
                    canvas[top:top + h, left:left + w] = pixels
                    rects.append({"left": left, "top": top, "width": w, "height": h, "person": person, "image": image})
                    break
        name = f"scene{n:03d}.png"
        Image.fromarray(canvas.astype(np.uint8)).save(os.path.join(out, name))
        records.append({"scene": name, "background": kind, "faces": rects})
    with open(os.path.join(out, "scenes.json"), "w") as f:
        json.dump(records, f, indent=1)
    print(f"{scenes} scenes, {sum(len(r['faces']) for r in records)} faces -> {out}")


def photos(orl, out):
    os.makedirs(out, exist_ok=True)
    face = lambda person, image, size: Image.open(os.path.join(orl, person, f"{image}.pgm")).convert("RGB").resize(size)

    def gradient():
        y, x = np.mgrid[0:HEIGHT, 0:WIDTH]
        return Image.fromarray(np.stack([70 + x * 0.2, 100 + y * 0.2, 150 - x * 0.1], -1).clip(0, 255).astype(np.uint8))
    one = gradient()
    one.paste(face("s7", 3, (138, 168)), (250, 150))
    one.save(os.path.join(out, "one_face.png"))
    eight = gradient()
    for i in range(8):
        eight.paste(face(f"s{i + 10}", 1, (110, 134)), (20 + 155 * (i % 4), 40 + 220 * (i // 4)))
    eight.save(os.path.join(out, "eight_faces.png"))
    crowd = Image.new("RGB", (1600, 1240), (120, 140, 160))
    for k in range(200):
        crowd.paste(face(f"s{k % 30 + 1}", k % 10 + 1, (80, 97)), ((k % 20) * 80, (k // 20) * 124))
    crowd.save(os.path.join(out, "crowd200.png"))
    huge = Image.new("RGB", (7280, 5480), (90, 110, 130))
    huge.paste(face("s7", 3, (1840, 2240)), (2500, 1500))
    huge.save(os.path.join(out, "photo40mp.png"))
    Image.new("RGB", (1, 1)).save(os.path.join(out, "one_pixel.png"))
    print(f"one_face, eight_faces, crowd200, photo40mp, one_pixel -> {out}")


def embed(server, path):
    with open(path, "rb") as f:
        body = json.dumps({"image": base64.b64encode(f.read()).decode(), "max_faces": 10}).encode()
    request = urllib.request.Request(server + "/v1/embed", data=body, headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=120) as response:
            return json.load(response)
    except urllib.error.HTTPError as error:
        answer = json.load(error)
        if answer.get("error", {}).get("code") == "no_face":
            return {"faces": []}
        raise


def eer(genuine, impostor):
    genuine, impostor = np.sort(genuine), np.sort(impostor)
    best = (2.0, 0)
    for t in np.concatenate([genuine, impostor]):
        frr = np.mean(genuine > t)
        far = np.mean(impostor <= t)
        best = min(best, (abs(frr - far), (frr + far) / 2))
    return best[1]


def score(orl, out, server):
    records = json.load(open(os.path.join(out, "scenes.json")))
    gallery = {}
    for person in PEOPLE:
        answer = embed(server, os.path.join(orl, person, "1.pgm"))
        gallery[person] = np.array(answer["faces"][0]["embedding"])
    names = list(gallery)
    matrix = np.stack([gallery[p] for p in names])
    crop_cache = {}

    def crop(person, image):
        key = (person, image)
        if key not in crop_cache:
            faces = embed(server, os.path.join(orl, person, f"{image}.pgm"))["faces"]
            crop_cache[key] = np.array(faces[0]["embedding"]) if faces else None
        return crop_cache[key]

    buckets = {"40-79": [0, 0], "80-159": [0, 0], "160+": [0, 0]}
    boxes = hits = 0
    scene_queries, crop_queries = [], []
    for record in records:
        answer = embed(server, os.path.join(out, record["scene"]))
        found = sorted(answer["faces"], key=lambda f: -(f["confidence"] or 0))
        boxes += len(found)
        taken = set()
        for face in found:
            b = face["box"]
            cx, cy = (b["left"] + b["right"]) / 2, (b["top"] + b["bottom"]) / 2
            area = (b["right"] - b["left"] + 1) * (b["bottom"] - b["top"] + 1)
            for i, r in enumerate(record["faces"]):
                inside = r["left"] <= cx < r["left"] + r["width"] and r["top"] <= cy < r["top"] + r["height"]
                if i not in taken and inside and 0.15 <= area / (r["width"] * r["height"]) <= 1.5:
                    taken.add(i)
                    hits += 1
                    reference = crop(r["person"], r["image"])
                    if reference is not None:
                        scene_queries.append((r["person"], np.array(face["embedding"])))
                        crop_queries.append((r["person"], reference))
                    break
        for i, r in enumerate(record["faces"]):
            size = 0.75 * r["width"]
            key = "40-79" if size < 80 else "80-159" if size < 160 else "160+"
            buckets[key][0] += 1
            buckets[key][1] += i in taken
    result = {"scenes": len(records), "faces": sum(b[0] for b in buckets.values()), "boxes": boxes,
              "precision": hits / max(boxes, 1),
              "recall": {k: {"faces": v[0], "recall": v[1] / max(v[0], 1)} for k, v in buckets.items()},
              "recall_80_and_up": (buckets["80-159"][1] + buckets["160+"][1]) / max(buckets["80-159"][0] + buckets["160+"][0], 1)}
    for label, queries in [("scenes", scene_queries), ("crops", crop_queries)]:
        distances = np.stack([np.linalg.norm(matrix - q, axis=1) for _, q in queries])
        truth = np.array([[names[j] == p for j in range(len(names))] for p, _ in queries])
        rank1 = float(np.mean([names[int(np.argmin(d))] == p for (p, _), d in zip(queries, distances)]))
        result[label] = {"queries": len(queries), "rank1": rank1, "eer": float(eer(distances[truth], distances[~truth])),
                         "accuracy_at_0.6": float(np.mean((distances <= 0.6) == truth))}
    json.dump(result, sys.stdout, indent=1)
    print()


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("command", choices=["make", "score", "photos"])
    parser.add_argument("orl")
    parser.add_argument("out")
    parser.add_argument("server", nargs="?")
    parser.add_argument("--scenes", type=int, default=150)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    if args.command == "make":
        make(args.orl, args.out, args.scenes, args.seed)
    elif args.command == "photos":
        photos(args.orl, args.out)
    else:
        score(args.orl, args.out, args.server.rstrip("/"))


if __name__ == "__main__":
    main()
