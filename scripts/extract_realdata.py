#!/usr/bin/env python3
"""Extract the project's real annotated sequences from fetched git mirrors (no work tree needed).

Usage:
  MIRROR_ROOT=<root> python3 scripts/extract_realdata.py [--inventory dytrack_ros/data/real_sequences.json]
                     [--out .data/realdata] [--mirror PATH] [NAME ...]
    no NAME -> all entries.  --mirror overrides the frames repo's mirror path (only sensible with one NAME).
Library use:
  extract(mirror_path, entry, out_root='realdata', gt_mirror_path=None)

Output: <out>/<name>/img/0001.jpg ... (frames renumbered from 1, JPEG bytes copied untouched)
        <out>/<name>/groundtruth_rect.txt   one line per frame: x,y,w,h (comma separated)
          - OTB / UAV123 / DTB70 / UAVDT sources: values copied unchanged (1-based, top-left + size)
          - VOT polygon sources (8 numbers, 0-based): axis-aligned min/max box, shifted +1 to the OTB 1-based convention
          - frames where the target is absent (UAV123 NaN rows) are written as NaN,NaN,NaN,NaN
Only the standard library + git are needed.
"""
import json, os, re, subprocess, argparse, math

def mirror_of(repo):
    return os.path.join(os.environ['MIRROR_ROOT'], repo.replace('/', '+'), 'repo')  # where fetch put it

def _ls(mirror, commit, d):
    out = subprocess.run(['git', '-C', mirror, 'ls-tree', '--name-only', commit, d.rstrip('/') + '/'],
                         capture_output=True, check=True).stdout.decode().splitlines()
    return sorted(p for p in out if re.search(r'\.(jpe?g|png|bmp)$', p, re.I))

def _num(p):
    s = re.sub(r'\D', '', os.path.basename(p).rsplit('.', 1)[0])
    return int(s) if s else -1

class _Cat:
    def __init__(self, mirror):
        self.p = subprocess.Popen(['git', '-C', mirror, 'cat-file', '--batch'], stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    def get(self, spec):
        self.p.stdin.write(spec.encode() + b'\n'); self.p.stdin.flush()
        hdr = self.p.stdout.readline().split()
        if len(hdr) < 3 or hdr[1] != b'blob':
            raise KeyError(spec)
        n = int(hdr[2]); data = self.p.stdout.read(n); self.p.stdout.read(1)
        return data
    def close(self):
        self.p.stdin.close(); self.p.wait()

def _parse_gt(text):
    rows = []
    for ln in text.splitlines():
        ln = ln.strip()
        if not ln:
            continue
        vals = [float('nan') if v.lower() == 'nan' else float(v) for v in re.split(r'[,\s;]+', ln) if v]
        rows.append(vals)
    return rows

def _to_xywh(v):
    if len(v) >= 8:  # VOT polygon, 0-based
        xs, ys = v[0:8:2], v[1:8:2]
        if any(math.isnan(t) for t in xs + ys):
            return [float('nan')] * 4
        x0, y0 = min(xs), min(ys)
        return [x0 + 1, y0 + 1, max(xs) - x0, max(ys) - y0]
    return v[:4]

def _fmt(x):
    if math.isnan(x):
        return 'NaN'
    return str(int(x)) if float(x).is_integer() else ('%.2f' % x)

def extract(mirror_path, entry, out_root='realdata', gt_mirror_path=None):
    commit = entry['commit']
    gt_repo = entry.get('gt_repo', entry['repo'])
    gt_mirror = gt_mirror_path or (mirror_path if gt_repo == entry['repo'] else mirror_of(gt_repo))
    gt_commit = entry.get('gt_commit', commit) if gt_repo != entry['repo'] else commit
    files = _ls(mirror_path, commit, entry['frames_dir'])
    n = entry['n_gt']
    start = entry.get('frame_start_number')
    if start is not None:
        sel = [f for f in files if start <= _num(f) < start + n]
    else:
        sel = files[:n]
    if len(sel) != n:
        raise RuntimeError('%s: %d frames selected but %d GT lines' % (entry['name'], len(sel), n))
    gcat = _Cat(gt_mirror)
    rows = _parse_gt(gcat.get('%s:%s' % (gt_commit, entry['gt_path'])).decode('utf-8', 'replace'))
    gcat.close()
    assert len(rows) == n, (entry['name'], len(rows), n)
    d = os.path.join(out_root, entry['name']); os.makedirs(os.path.join(d, 'img'), exist_ok=True)
    cat = _Cat(mirror_path)
    for i, f in enumerate(sel, 1):
        data = cat.get('%s:%s' % (commit, f))
        if not f.lower().endswith(('.jpg', '.jpeg')):
            import numpy as np, cv2  # only needed for non-JPEG sources
            data = cv2.imencode('.jpg', cv2.imdecode(np.frombuffer(data, np.uint8), 1), [cv2.IMWRITE_JPEG_QUALITY, 95])[1].tobytes()
        with open(os.path.join(d, 'img', '%04d.jpg' % i), 'wb') as fh:
            fh.write(data)
    cat.close()
    with open(os.path.join(d, 'groundtruth_rect.txt'), 'w') as fh:
        for r in rows:
            fh.write(','.join(_fmt(v) for v in _to_xywh(r)) + '\n')
    return d, len(sel)

if __name__ == '__main__':
    ap = argparse.ArgumentParser()
    ap.add_argument('names', nargs='*')
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    ap.add_argument('--inventory', default=os.path.join(root, 'dytrack_ros', 'data', 'real_sequences.json'))
    ap.add_argument('--out', default=os.path.join(root, '.data', 'realdata'))
    ap.add_argument('--mirror', default=None)
    a = ap.parse_args()
    inv = json.load(open(a.inventory))
    inv = inv['sequences'] if isinstance(inv, dict) else inv   # the project's file, or a plain list
    tot = 0
    for e in inv:
        if a.names and e['name'] not in a.names:
            continue
        d, k = extract(a.mirror or mirror_of(e['repo']), e, a.out)
        tot += k
        print('%-14s %5d frames -> %s' % (e['name'], k, d), flush=True)
    print('total frames', tot)
