"""Finding the target again after it was lost: a search over the whole frame with the first exit, and an appearance
memory that confirms what it finds.

- Global search: once the target has been LOST for `redetect_patience` frames, every LOST frame also runs the first
  exit (the cheapest stage) on `redetect_windows` search windows of a grid that covers the image at the last confident
  size (and, with `redetect_scales`, at multiples of it: one grid per size, visited in turn); re-finding and checking
  a pending candidate comes out of that budget (it can take all of it: 1 + one per memory), so the search costs at
  most max(redetect_windows, 4) first-exit runs a frame beyond the local search, plus up to 3 memory checks on the
  frames a candidate in the local window is being confirmed (confirm_local). The grid's stride is 3/4 of a window
  (neighbours overlap, a target is well inside one of them). Windows are visited nearest first from where the target
  was last seen (it most often comes back near where it left, and a 1280x720 frame of a small target holds 100+
  windows), then round-robin. No motion prior inside a window: the target can be anywhere.
- Confirmation: a candidate must score >= confirm_threshold (the exit's predicted IoU of its box) on `confirm_frames`
  frames (one frame under it in a row is forgiven: a target coming back is often half hidden), each time re-found in
  a window centred on where it was last (so it may move, a box diagonal per frame at most), and, where the memory
  holds templates, match them too (median score >= confirm_threshold: one template checked per confirmation frame,
  round-robin). Only then does the tracker jump. Leaving LOST through the local search takes the same evidence
  (`confirm_local`): a look-alike that steps into the local window while the target is away is refused the same way.
- Appearance memory: up to `memory_size` templates cut on confident TRACKING frames (score >= memory_score, at most
  one every memory_interval frames; the oldest goes first). Never from LOST frames, nor from boxes cut by the image
  border (the target is leaving: neither its look nor its size is whole). A look-alike that matches the first-frame
  template but not how the target looked lately is refused. When a template is due, the newest one must also
  recognise the box (verify_threshold; the tracker's side): a confident box it does not recognise has slid onto a
  look-alike, and the target is reported LOST.
- Look-alike memory: when a template is due, the strongest other object in the search crop (the first exit's score
  map >= lookalike_score at least a box size away from the target: the runner beside the runner, the next car) is cut
  too, up to `lookalike_memory` templates. A candidate is also compared, at its own place, with one look-alike
  template per confirmation frame (round-robin): when the look-alikes match it better than the target's memory does
  by more than lookalike_margin (median of the differences) it is refused. The tracker's check of a confident box
  compares the newest memory template with the next look-alike the same way, without a margin (drift onto a
  remembered look-alike). The target's memory alone cannot tell these apart: a look-alike of the same kind scores as
  high against it as the target does (Bolt~turn: 0.86-0.89).
- Refused memory: a candidate the memory refused (confirm_frames hits on the first template, not the target's recent
  look) is cut too, up to `remember_refused` templates: it is most often the car or runner beside the target, and a
  later look at it that the memory would pass (S1001~turn: the car next to the target, refused for 60 LOST frames,
  then taken) must not win it. A candidate is compared with one refused template per confirmation frame (round-robin)
  and refused when they match it better than the target's memory by more than refused_margin (median). The margin is
  wider than the look-alikes' because a refusal is sometimes the target itself, back under a new light
  (wakeboard3~turn: memory 0.57; the refused template then leads it by 0.05-0.10, the car beside S1001's by 0.2-0.3);
  and these templates never judge a tracked box.
TRACKING frames pay one first-exit run per memory_interval frames (the check; two with look-alikes), nothing else.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, List, Optional

import numpy as np

from .crops import crop_side


@dataclass
class Candidate:
    box: np.ndarray        # (x, y, w, h) image pixels
    score: float           # first-frame template's score of the box
    hits: int = 1          # frames it was found again at >= confirm_threshold
    misses: int = 0        # consecutive frames it was found again, but under the threshold (one is forgiven)
    memory_scores: List[float] = field(default_factory=list)
    lookalike_margins: List[float] = field(default_factory=list)   # memory's score at the box minus a look-alike's
    refused_margins: List[float] = field(default_factory=list)     # the same against a refused candidate's template

    def extend(self, box: np.ndarray, score: float, threshold: float) -> bool:
        """Found again on a new frame: a hit at >= threshold, else a miss (a partly hidden target dips for a frame;
        two misses in a row end the candidate). Returns False when it ends."""
        self.box = box
        if score >= threshold:
            self.score, self.hits, self.misses = score, self.hits + 1, 0
            return True
        self.misses += 1
        return self.misses < 2

    def memory_agrees(self, threshold: float) -> bool:
        # the median, not the mean: one template cut while the box was already sliding off the target (confident,
        # but on its edge) must not veto the target itself (group3_2: 0.65, 0.67, 0.63 and 0.22)
        return not self.memory_scores or float(np.median(self.memory_scores)) >= threshold

    def resembles_a_lookalike(self, margin: float = 0.0) -> bool:
        """The look-alike templates match the box better than the target's memory by more than `margin` (median)."""
        return bool(self.lookalike_margins) and float(np.median(self.lookalike_margins)) < -margin

    def resembles_a_refused_one(self, margin: float, least: int) -> bool:
        """The templates of refused candidates match the box better than the target's memory by more than `margin`
        (median of at least `least` comparisons: one made right after a refusal is one look, not a verdict)."""
        return len(self.refused_margins) >= least and float(np.median(self.refused_margins)) < -margin


@dataclass
class SearchStats:
    """Counters since the tracker started (the node's /diagnostics)."""
    windows: int = 0              # first-exit runs spent on the global search and confirmation
    candidates: int = 0           # candidates that started a confirmation
    refused_by_memory: int = 0
    refused_as_lookalike: int = 0  # candidates a look-alike template matched better than the target's memory
    refused_as_seen_before: int = 0  # candidates a refused candidate's template matched better than the memory
    reacquired: int = 0
    drifts: int = 0               # confident frames the memory did not recognise (reported LOST)
    area_searched: float = 0.0    # image area covered by global windows, in frames (1.0 = one whole frame)


def grid_centres(width: int, height: int, side: float, near: Optional[tuple] = None) -> List[tuple]:
    """Window centres covering the image with windows of `side` pixels, stride 3/4 side: rows then columns, or
    nearest first from the point `near`."""
    def axis(length):
        if length <= side:
            return [length / 2.0]
        n = int(np.ceil((length - side) / (0.75 * side))) + 1
        return list(np.linspace(side / 2.0, length - side / 2.0, n))
    centres = [(x, y) for y in axis(height) for x in axis(width)]
    if near is not None:
        centres.sort(key=lambda c: np.hypot(c[0] - near[0], c[1] - near[1]))
    return centres


class GlobalSearch:
    """State of one lost spell's global search. `score_window(frame, centre, size)` runs the first exit on a window
    centred at `centre` sized for a target of `size` (w, h) and returns (box, score) of its best candidate (no motion
    prior); `match(template, frame, box)` scores a box against another template: (predicted IoU of the best box in a
    window centred on it, predicted IoU at the box itself); `cut(frame, box)` cuts a template there (None: refused
    candidates are not remembered)."""

    def __init__(self, params, score_window: Callable, match: Callable, cut: Optional[Callable] = None):
        self.p, self.score_window, self.match, self.cut = params, score_window, match, cut
        self.memory: List[np.ndarray] = []
        self.lookalikes: List[np.ndarray] = []
        self.refused: List[np.ndarray] = []
        self.lookalike_turn = 0
        self.stats = SearchStats()
        self.since_memory = 0
        self.reset()

    def reset(self) -> None:
        """A new lost spell starts (or the target is back): forget the cursors and the pending candidate."""
        self.turn, self.cursors, self.grids, self.pending = 0, {}, {}, None

    def clear_memory(self) -> None:
        self.memory, self.lookalikes, self.refused, self.since_memory, self.lookalike_turn = [], [], [], 0, 0

    def add_lookalike(self, template: np.ndarray) -> None:
        keep = max(int(self.p.lookalike_memory), 0)      # [-0:] would keep them all
        self.lookalikes = (self.lookalikes + [template])[-keep:] if keep else []

    def next_lookalike(self) -> Optional[np.ndarray]:
        """The look-alike templates in turn (None when there are none)."""
        if not self.lookalikes:
            return None
        self.lookalike_turn += 1
        return self.lookalikes[self.lookalike_turn % len(self.lookalikes)]

    def wants_template(self, score: float) -> bool:
        """Called once per TRACKING frame with its score: True when a template should be cut into the memory now."""
        self.since_memory += 1
        return self.p.memory_size > 0 and score >= self.p.memory_score and self.since_memory >= self.p.memory_interval

    def add_template(self, template: np.ndarray) -> None:
        self.memory = (self.memory + [template])[-self.p.memory_size:]
        self.since_memory = 0

    def step(self, frame: np.ndarray, size: np.ndarray, last_seen: tuple) -> Optional[Candidate]:
        """One LOST frame's search for a target of the last confident `size` times each of redetect_scales (in turn,
        one grid per scale: a target that came back nearer or farther), nearest first from `last_seen` (the centre
        where the target was last tracked); returns a confirmed candidate or None."""
        h, w = frame.shape[:2]
        budget = max(int(self.p.redetect_windows), 1)
        if self.pending is not None:
            confirmed = self._confirm(frame)
            budget -= 1 + (1 if self.memory else 0) + (1 if self.memory and self.lookalikes else 0) + (
                1 if self.memory and self.refused else 0)
            if confirmed is not None:
                return confirmed
        scales = tuple(self.p.redetect_scales) or (1.0,)
        best = None
        for _ in range(max(budget, 0)):
            scale = scales[self.turn % len(scales)]
            self.turn += 1
            target = np.asarray(size, float) * scale
            side = self.side_for(target)
            key = (w, h, side, tuple(last_seen))     # fixed through a lost spell: the grid is sorted once
            if self.grids.get(scale, (None,))[0] != key:
                self.grids[scale] = (key, grid_centres(w, h, side, near=last_seen))
            centres = self.grids[scale][1]
            k = self.cursors.get(scale, 0)
            self.cursors[scale] = k + 1
            box, score = self.score_window(frame, centres[k % len(centres)], target)
            self.stats.windows += 1
            self.stats.area_searched += min(side * side / float(w * h), 1.0)
            if score >= self.p.confirm_threshold and (best is None or score > best.score):
                best = Candidate(box, score)
        if self.pending is None and best is not None:
            self.pending = best
            self.stats.candidates += 1
        return None

    def side_for(self, size) -> float:
        return crop_side((0, 0, size[0], size[1]), self.p.search_factor, self.p.context_amount)

    def _confirm(self, frame: np.ndarray) -> Optional[Candidate]:
        c = self.pending
        centre = (c.box[0] + c.box[2] / 2.0, c.box[1] + c.box[3] / 2.0)
        box, score = self.score_window(frame, centre, c.box[2:])
        self.stats.windows += 1
        moved = np.hypot(box[0] + box[2] / 2.0 - centre[0], box[1] + box[3] / 2.0 - centre[1])
        if moved > np.hypot(c.box[2], c.box[3]):
            self.pending = None
            return None
        verdict = self._settle(c, box, score, frame)
        if verdict is None:
            self.pending = None
        if not verdict:
            return None
        self.stats.reacquired += 1
        self.reset()
        return c

    def _settle(self, c: Candidate, box: np.ndarray, score: float, frame: np.ndarray) -> Optional[bool]:
        """One frame of a candidate's confirmation: None when it ends (two dips in a row, or the memory refuses it
        after confirm_frames hits), False while it is still pending, True when it is confirmed."""
        if not c.extend(box, score, self.p.confirm_threshold):
            return None
        if c.misses:
            return False
        self.check_memory(c, frame)
        if c.hits < self.p.confirm_frames:
            return False
        if not c.memory_agrees(self.p.confirm_threshold):
            self.stats.refused_by_memory += 1
            keep = max(int(self.p.remember_refused), 0)
            if keep and self.cut is not None:
                self.refused = (self.refused + [self.cut(frame, c.box)])[-keep:]
            return None
        if c.resembles_a_lookalike(self.p.lookalike_margin):
            self.stats.refused_as_lookalike += 1
            return None
        if c.resembles_a_refused_one(self.p.refused_margin, least=self.p.confirm_frames // 2 + 1):
            self.stats.refused_as_seen_before += 1
            return None
        return True

    def check_memory(self, c: Candidate, frame: np.ndarray) -> None:
        """One memory template (round-robin) scores the candidate's box on this frame, and one look-alike template
        (round-robin) is compared with it at the box."""
        if self.memory:
            score, here = self.match(self.memory[len(c.memory_scores) % len(self.memory)], frame, c.box)
            c.memory_scores.append(score)
            self.stats.windows += 1
            other = self.next_lookalike()
            if other is not None:
                c.lookalike_margins.append(here - self.match(other, frame, c.box)[1])
                self.stats.windows += 1
            if self.refused:
                other = self.refused[len(c.refused_margins) % len(self.refused)]
                c.refused_margins.append(here - self.match(other, frame, c.box)[1])
                self.stats.windows += 1

    def confirm_local(self, c: Optional[Candidate], box: np.ndarray, score: float, frame: np.ndarray):
        """The local search's way out of LOST: its answer `box` with first-exit `score` extends the candidate `c`
        (None: no streak yet). Returns (candidate or None, confirmed)."""
        if c is None:
            if score < self.p.confirm_threshold:
                return None, False
            c = Candidate(box, score, 0)
        verdict = self._settle(c, box, score, frame)
        return (None, False) if verdict is None else (c, verdict)
