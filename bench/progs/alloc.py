"""The python3 workload: object-heavy interpreter work (records, dicts, strings,
tuples, trees, JSON) whose allocations all reach malloc when PYTHONMALLOC=malloc.

Usage: python3 alloc.py SCALE. Prints checksum=<16 hex digits>, computed from the
data only (no hash() of str, which is randomised per process)."""

import json
import sys

MASK = (1 << 64) - 1


def mix(h, v):
    return ((h ^ v) * 0x100000001B3) & MASK


def records(n, seed):
    """A table of records built, sorted, grouped and mostly dropped."""
    rows = []
    x = seed
    for i in range(n):
        x = (x * 6364136223846793005 + 1442695040888963407) & MASK
        rows.append({
            "id": i,
            "name": "user-%d-%x" % (x % 9973, x >> 40),
            "group": x % 257,
            "tags": ["t%d" % (x >> k & 31) for k in range(0, 20, 5)],
            "score": (x >> 16) % 100000,
        })
    rows.sort(key=lambda r: (r["group"], r["name"]))
    groups = {}
    for r in rows:
        groups.setdefault(r["group"], []).append(r)
    h = 0
    for g, members in groups.items():
        best = max(members, key=lambda r: (r["score"], r["id"]))
        h = mix(h, g * 1000003 + len(members) + best["id"])
        h = mix(h, len(",".join(best["tags"])) + len(best["name"]))
    return h


def strings(n):
    """Text split, rebuilt, formatted and joined."""
    words = []
    for i in range(n):
        words.append("w%d" % (i * 7919 % 10007))
    text = " ".join(words)
    h = 0
    for line_no, chunk in enumerate(text.split("w1")):
        parts = chunk.strip().split(" ")
        line = "%d:%s" % (line_no, "|".join(reversed(parts)))
        h = mix(h, len(line) + line.count("|"))
    fragments = []
    for i in range(n // 4):
        fragments.append(f"<item id={i} v={i * i % 977}>{'x' * (i % 23)}</item>")
    return mix(h, len("".join(fragments)))


def tree(depth):
    """Binary trees of tuples, built and torn down."""
    if depth == 0:
        return (None, None)
    return (tree(depth - 1), tree(depth - 1))


def count(t):
    left, right = t
    return 1 if left is None else 1 + count(left) + count(right)


def trees(rounds):
    long_lived = tree(16)
    h = 0
    for r in range(rounds):
        for d in range(4, 14, 2):
            h = mix(h, count(tree(d)) + r)
    return mix(h, count(long_lived))


class Node:
    __slots__ = ("key", "value", "children")

    def __init__(self, key, value):
        self.key = key
        self.value = value
        self.children = []


def objects(n):
    """Instances in a dict, half replaced, linked into a forest."""
    table = {}
    for i in range(n):
        table[i] = Node(i, "v" * (i % 40))
    for i in range(0, n, 2):
        del table[i]
    for i in range(n, n + n // 2):
        table[i] = Node(i, [i, str(i), (i, i + 1)])
    keys = list(table)
    for k in keys[1:]:
        table[keys[(k * 31) % len(keys)]].children.append(table[k])
    h = 0
    for k in keys:
        node = table[k]
        h = mix(h, node.key + len(node.children) * 7)
    return h


def documents(n):
    """JSON round trips of nested documents."""
    h = 0
    for i in range(n):
        doc = {"id": i, "items": [{"k": j, "s": "v%d" % (i * j)} for j in range(i % 50)],
               "meta": {"name": "doc%d" % i, "list": list(range(i % 30))}}
        text = json.dumps(doc, sort_keys=True)
        back = json.loads(text)
        h = mix(h, len(text) + len(back["items"]))
    return h


def main():
    scale = float(sys.argv[1]) if len(sys.argv) > 1 else 1.0
    s = lambda n: max(int(n * scale), 10)
    h = 0
    h = mix(h, records(s(60000), 1))
    h = mix(h, strings(s(150000)))
    h = mix(h, trees(s(12)))
    h = mix(h, objects(s(80000)))
    h = mix(h, documents(s(10000)))
    print("checksum=%016x" % h)


main()
