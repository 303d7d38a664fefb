#!/usr/bin/env python3
"""face_recognition and Doppel's imported dlib model scored the same way on a folder of people
(one subfolder each, e.g. ORL's s1..s30), from each one's embeddings of the same photos:

    doppel embed --model faces.safetensors DATA/*/*.pgm --json > doppel.json
    "$(scripts/compare/face_venv)" scripts/compare/face_recognition_orl.py DATA doppel.json

For each: photos without a face, the largest difference between the two encodings of a
photo, pair accuracy at dlib's threshold 0.6 and the equal error rate over every pair of
photos, and rank-1 with one photo of each person enrolled (every other photo a query), the
mean over 100 random choices of the enrolled photos. face_recognition's encodings are
face_encodings on face_locations(model="cnn", upsample 1), the largest face of each photo.

face_locations cuts each box to the photo before face_encodings places the landmarks on it;
dlib's own pipeline, and Doppel's, place them on the detector's box as drawn. For a face that
reaches past the photo's edge the two encodings then differ (by up to 0.04 on ORL, in s26/6),
while on boxes inside the photo they agree to about 1e-6.
"""
import glob
import json
import os
import random
import sys

import numpy as np
import face_recognition


def scores(encodings):
    paths = sorted(encodings)
    people = [os.path.basename(os.path.dirname(p)) for p in paths]
    x = np.array([encodings[p] for p in paths])
    distance = np.sqrt(((x[:, None, :] - x[None, :, :]) ** 2).sum(-1))
    same = np.array([[a == b for b in people] for a in people])
    upper = np.triu_indices(len(paths), 1)
    d, s = distance[upper], same[upper]
    accuracy = float(((d <= 0.6) == s).mean())
    # EER: the threshold where false accepts and false rejects cross.
    best = None
    for t in np.unique(d):
        far, frr = float((d[~s] <= t).mean()), float((d[s] > t).mean())
        if best is None or abs(far - frr) < best[0]:
            best = (abs(far - frr), (far + frr) / 2)
    rng = random.Random(2024)
    by_person = {}
    for i, person in enumerate(people):
        by_person.setdefault(person, []).append(i)
    rank1 = []
    for _ in range(100):
        enrolled = {person: rng.choice(rows) for person, rows in by_person.items()}
        gallery = list(enrolled.values())
        hits = total = 0
        for i, person in enumerate(people):
            if i == enrolled[person]:
                continue
            nearest = gallery[int(np.argmin(distance[i, gallery]))]
            hits += people[nearest] == person
            total += 1
        rank1.append(hits / total)
    return {"photos": len(paths), "pairAccuracyAt0.6": round(accuracy, 4), "equalErrorRate": round(best[1], 4),
            "rank1OneEnrolled": round(float(np.mean(rank1)), 4), "rank1StandardError": round(float(np.std(rank1) / 10), 4)}


def main():
    folder, doppel_json = sys.argv[1], sys.argv[2]
    doppel = {os.path.normpath(e["image"]): e["embedding"] for e in json.load(open(doppel_json))["embeddings"] if e.get("embedding")}
    reference, without = {}, []
    for path in sorted(glob.glob(os.path.join(folder, "*", "*"))):
        image = face_recognition.load_image_file(path)
        boxes = face_recognition.face_locations(image, 1, model="cnn")
        if not boxes:
            without.append(path)
            continue
        largest = max(boxes, key=lambda b: (b[2] - b[0]) * (b[1] - b[3]))
        reference[os.path.normpath(path)] = face_recognition.face_encodings(image, [largest])[0]
    both = sorted(set(reference) & set(doppel))
    difference, where = max((float(np.abs(np.array(doppel[p]) - reference[p]).max()), p) for p in both)
    print(json.dumps({
        "face_recognition": dict(scores(reference), withoutFace=len(without)),
        "doppel": dict(scores(doppel), withoutFace=len(glob.glob(os.path.join(folder, "*", "*"))) - len(doppel)),
        "photosInBoth": len(both), "largestEncodingDifference": difference, "largestDifferenceAt": where,
    }, indent=1))


if __name__ == "__main__":
    main()
