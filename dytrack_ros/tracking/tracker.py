"""The per-sequence tracker: template, search crops, the early-exit policy and box back-projection.

Exit policy: run stage 0; if its score (predicted IoU) >= thresholds[0], stop and use its box, else run stage 1, and so
on; the last stage always answers. `force_stages` runs exactly that many stages (for evaluation).
Decoding: every exit is decoded the way NanoTrack decodes the head that is our first exit (SiamTrackers' NanoTracker,
configv2): context-padded crops padded with the first frame's mean colour, a scale and aspect penalty, a cosine
window, the size blended in at a rate scaled by the penalised score. The score of an answer is the exit's predicted
IoU of the very box it publishes (the graph's per-cell iou_map read at the chosen cell).
Lost state: when the answering exit's score is under lost_threshold, or less than min_visible of the estimated box
lies inside the image, the target is reported LOST; the box keeps following the best candidate (a short occlusion
must not make it give up), or with lost_patience set, holds after that many frames while the search area grows.
With re-detection (redetect, the default) leaving LOST takes confirm_frames first-exit scores >= confirm_threshold in
a row, and after redetect_patience LOST frames the whole image is searched as well (tracking/redetect.py).
The state box is the unclipped estimate with its size bounded relative to the init box: clipping it to the
image would shrink it frame by frame at the border (and the search area with it) until it collapsed.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import List, Optional, Sequence

import numpy as np

from ..contract import StagedBackend, StageResult, default_thresholds, to_network_input
from .crops import box_center, clip_box, crop_and_resize, crop_side
from .fear_stage import FearStage, deep_features, overlap
from .redetect import GlobalSearch

IDLE, TRACKING, LOST = 0, 1, 2
DEEP_ANSWERS = ("deep", "fuse", "choose")
STATE_NAMES = {IDLE: "idle", TRACKING: "tracking", LOST: "lost"}


class InvalidBoxError(ValueError):
    """An init box is empty, negative, non-finite or outside the image."""


class InvalidFrameError(ValueError):
    """A frame is not an HxWx3 uint8 image."""


@dataclass
class TrackerParams:
    template_size: int
    search_size: int
    template_factor: float = 2.0
    search_factor: float = 4.0
    # one per stage; empty: the uncalibrated default for the backend's stage count (runtime: the manifest's)
    thresholds: List[float] = field(default_factory=list)
    lost_threshold: float = 0.15      # under it the state reads LOST (lost-and-found figures: benchmarks/RESULTS.md)
    # under this first-exit score the state reads LOST whatever a later exit says: the first exit (NanoTrack's
    # matcher) knows when the target is gone; the later exits' scores are confident on background
    absent_threshold: float = 0.0
    # the decoding NanoTrack's head was trained with (SiamTrackers configv2), used for every exit:
    context_amount: float = 0.5       # crop side from the context-padded box (crops.crop_side); 0: sqrt(w h)
    mean_padding: bool = True         # outside the image: the first frame's mean colour (False: replicate the border)
    window_influence: float = 0.49    # cosine window mixed into the penalised score map (motion prior)
    scale_penalty: float = 0.15       # k in exp(-k (size change x aspect change - 1)): candidates of another shape lose
    size_lr: float = 0.385            # share of the answer's size taken per frame, times its penalised score
    lost_patience: Optional[int] = None  # LOST frames during which the box follows the best candidate (None: always)
    max_search_growth: float = 2.0    # after lost_patience the box holds and the search area grows up to this
    min_box_side: float = 2.0
    min_visible: float = 0.3          # share of the estimated box inside the image below which the target is lost
    size_bounds: tuple = (0.2, 5.0)   # box width/height stay within these multiples of the init box
    # how a later exit's answer uses the first exit's (prediction recycling at decode time): "own" (its own maps),
    # "refine" (the first exit's score map places the target, the later exit sizes it), "fuse" (score maps averaged)
    later_exits: str = "own"
    # whether a later exit's answer also moves the loop's own state (the next crop's centre and scale, the memory, the
    # global search's size): False keeps the loop on the first exit's answer and a later exit only changes the box
    # that is published (a refinement, as for refining exits: a biased size fed back would compound frame by frame)
    later_exits_steer: bool = True
    # the dynamic policy publishes the answer of the exit that scored it highest among those run (False: the last
    # exit's); a forced depth always publishes that exit's answer
    best_scored: bool = False
    # finding the target again (tracking/redetect.py): after redetect_patience LOST frames, redetect_windows first-exit
    # windows per frame search the whole image; a candidate is taken after confirm_frames consecutive confirmations
    # at >= confirm_threshold that the appearance memory (memory_size templates of confident frames) agrees with
    redetect: bool = True
    redetect_patience: int = 10
    redetect_windows: int = 4
    redetect_scales: tuple = (1.0,)   # target sizes searched, times the last confident one (one grid each)
    confirm_frames: int = 5
    confirm_threshold: float = 0.6
    memory_size: int = 4
    memory_score: float = 0.6
    memory_interval: int = 15
    # when a template is due (every memory_interval confident frames) the newest memory template must score the box
    # >= verify_threshold, or the target is reported LOST (drifted onto a look-alike); 0: no check
    verify_threshold: float = 0.45
    # look-alike memory (tracking/redetect.py): up to lookalike_memory templates of the strongest other object in the
    # search crop (first-exit score >= lookalike_score a box size or more from the target), cut when a memory template
    # is due; a candidate, or a tracked box at its check, that a look-alike matches better than the memory is refused
    lookalike_memory: int = 4
    lookalike_score: float = 0.5
    # a candidate is refused when the look-alikes win by more than this (median of the predicted-IoU differences): a
    # tie within the scores' noise is not evidence against the target (Basketball's first exit 45.5 -> 50.7 AUC)
    lookalike_margin: float = 0.05
    # refused memory (tracking/redetect.py): up to remember_refused templates of candidates the memory refused (most
    # often the object beside the target); a later candidate they match better than the memory by more than
    # refused_margin is refused (S1001~turn: the car beside the target, refused for 60 frames, then taken); 0: off
    remember_refused: int = 4
    refused_margin: float = 0.15
    # with a deep stage (FEAR-XS, tracking/fear_stage.py) behind the first exit, what its answer publishes: "deep" (its
    # own box), "fuse" (its box and the first exit's averaged: two networks' errors that are far from correlated) or
    # "choose" (the box whose predicted IoU is higher: needs the deep stage's IoU head)
    deep_answer: str = "deep"
    # with "choose": where the two answers disagree (IoU < 0.5) the deep stage's is taken only if the target's newest
    # memory template matches it at least as well as the first exit's (FEAR-XS jumps to a look-alike beside the target)
    deep_identity_check: bool = False


@dataclass
class TrackResult:
    box: np.ndarray          # (x, y, w, h) image pixels
    score: float             # predicted IoU of the answering exit
    stages_run: int          # 1 .. num_stages: the exit of stage stages_run - 1 answered
    state: int
    inference_ms: float
    stage_scores: List[float]
    lost_frames: int = 0     # consecutive LOST frames up to this one (0 while TRACKING)
    redetected: bool = False  # this frame's box comes from the global search (the target was found again)
    stage_boxes: List[np.ndarray] = field(default_factory=list)   # each exit's answer (x, y, w, h), before bounds


def validate_frame(frame) -> np.ndarray:
    if not isinstance(frame, np.ndarray) or frame.ndim != 3 or frame.shape[2] != 3 or frame.dtype != np.uint8:
        desc = f"{getattr(frame, 'shape', None)} {getattr(frame, 'dtype', type(frame).__name__)}"
        raise InvalidFrameError(f"frame must be an HxWx3 uint8 BGR image, got {desc}")
    if frame.shape[0] < 8 or frame.shape[1] < 8:
        raise InvalidFrameError(f"frame too small: {frame.shape[1]}x{frame.shape[0]}")
    return frame


def validate_box(box: Sequence[float], width: int, height: int, min_side: float = 2.0) -> np.ndarray:
    """Checks an init box and clips it to the image. Raises InvalidBoxError with the reason."""
    b = np.asarray(box, dtype=np.float64).reshape(-1)
    if b.size != 4:
        raise InvalidBoxError(f"box must have 4 numbers (x, y, w, h), got {b.size}")
    if not np.all(np.isfinite(b)):
        raise InvalidBoxError(f"box has NaN or infinite values: {b.tolist()}")
    if b[2] <= 0 or b[3] <= 0:
        raise InvalidBoxError(f"box width and height must be positive, got w={b[2]:g} h={b[3]:g}")
    if b[2] > width or b[3] > height:
        raise InvalidBoxError(f"box {b.tolist()} is larger than the {width}x{height} image")
    x0, y0, x1, y1 = max(b[0], 0), max(b[1], 0), min(b[0] + b[2], width), min(b[1] + b[3], height)
    if x1 - x0 < min_side or y1 - y0 < min_side:
        raise InvalidBoxError(f"box {b.tolist()} lies outside the {width}x{height} image "
                              f"(or keeps less than {min_side:g} px inside it)")
    return np.array([x0, y0, x1 - x0, y1 - y0])


class DyTracker:
    """backend: the staged graphs (their first exit is NanoTrack's); deep: a deeper stage of another network
    (FEAR-XS) that replaces the backend's later stages: with it the tracker has two exits, the first exit and it."""

    def __init__(self, backend: StagedBackend, params: TrackerParams, deep: Optional[FearStage] = None):
        self.backend, self.params, self.deep = backend, params, deep
        self.num_stages = 2 if deep is not None else backend.num_stages
        if not params.thresholds:
            params.thresholds = default_thresholds(self.num_stages)
        if len(params.thresholds) != self.num_stages:
            raise ValueError(f"need {self.num_stages} exit thresholds, got {len(params.thresholds)}")
        if params.deep_answer not in DEEP_ANSWERS:
            raise ValueError(f"deep_answer must be one of {', '.join(DEEP_ANSWERS)}, got {params.deep_answer!r}")
        if params.deep_answer == "choose" and (deep is None or deep.iou_head is None):
            raise ValueError("deep_answer 'choose' compares predicted IoUs: the deep stage needs its IoU head")
        self.window = None
        self.state = IDLE
        self.box: Optional[np.ndarray] = None
        self.growth = 1.0
        self.search = GlobalSearch(params, self._score_window, self._match, self._template_at)

    def set_thresholds(self, thresholds: Sequence[float]) -> None:
        t = [float(x) for x in thresholds]
        if len(t) != self.num_stages or not all(np.isfinite(t)):
            raise ValueError(f"need {self.num_stages} finite exit thresholds, got {list(thresholds)}")
        self.params.thresholds = t

    def reset(self) -> None:
        self.state, self.box, self.growth = IDLE, None, 1.0

    def initialize(self, frame: np.ndarray, box: Sequence[float]) -> np.ndarray:
        frame = validate_frame(frame)
        h, w = frame.shape[:2]
        b = validate_box(box, w, h, self.params.min_box_side)
        p = self.params
        self.fill = frame.mean(axis=(0, 1)) if p.mean_padding else None
        side = crop_side(b, p.template_factor, p.context_amount)
        self.template = self._network_crop(frame, box_center(b), side, p.template_size)
        self.backend.set_template(self.template)
        if self.deep is not None:
            self.deep.initialize(frame, b)
        self.box, self.state, self.growth, self.low_frames, self.recovering = b, TRACKING, 1.0, 0, None
        self.init_size = b[2:].copy()
        self.confident_size = b[2:].copy()     # the global search looks for the target at this size
        self.last_seen = box_center(b)         # and starts where it was last tracked
        self.search.reset()
        self.search.clear_memory()
        return b

    def track(self, frame: np.ndarray, force_stages: Optional[int] = None) -> TrackResult:
        if self.state == IDLE:
            raise RuntimeError("tracker is not initialised: call initialize(frame, box) first")
        frame = validate_frame(frame)
        t0 = time.perf_counter()
        p = self.params
        search, center, side = self.search_region(frame)
        scores, best = [], None
        last = self.num_stages if force_stages is None else int(np.clip(force_stages, 1, self.num_stages))
        if force_stages is None and self.searching_globally():
            last = 1    # while the whole image is searched the local window only watches with the same first exit
        boxes = []
        for k in range(last):
            if k == 1 and self.deep is not None:
                answer = self._deep_answer(frame, first)
            else:
                result = self.backend.run_stage(k, search if k == 0 else None)
                if k == 0:
                    first_result = result
                elif p.later_exits == "refine":
                    result.score_map = first_result.score_map
                elif p.later_exits == "fuse":
                    result.score_map = 0.5 * (first_result.score_map + result.score_map)
                answer = self._decode(result, center, side)
            if k == 0:
                first = answer
            scores.append(answer.score)
            boxes.append(answer.box)
            if best is None or answer.score > best.score:
                best = answer
            if force_stages is None and answer.score >= p.thresholds[k]:
                break
        if force_stages is None and p.best_scored:
            answer = best
        h, w = frame.shape[:2]
        published = self._bound_size(answer.box)
        estimate = published if p.later_exits_steer else self._bound_size(first.box)   # what the loop goes on from
        box = clip_box(published, w, h, p.min_box_side)
        visible = (box[2] * box[3]) / max(published[2] * published[3], 1e-9)
        present = scores[0] >= p.absent_threshold
        redetected = False
        # a refining exit (later_exits_steer False) leaves the loop to the first exit: its state too
        judged = answer.score if p.later_exits_steer else first.score
        confident = judged >= p.lost_threshold and visible >= p.min_visible and present
        if self.state == LOST and p.redetect:
            # leaving LOST takes what the global search takes: the first exit at >= confirm_threshold on confirm_frames
            # frames in a row (background scores 0.2-0.5 for a frame or two; the real target holds >= 0.5), and the
            # appearance memory agreeing (a look-alike in the local window while the target is away)
            self.recovering, confident = self.search.confirm_local(
                self.recovering, estimate, scores[0] if confident else 0.0, frame)
        # a box cut by the image border holds part of the target (it is leaving): neither its size nor its look is
        # the target's, so the global search's size and the memory only learn from whole boxes
        cut = confident and visible >= 0.99 and self.search.wants_template(answer.score)
        if cut and not self._recognised(frame, estimate):
            # confident on the first template, but not what the target looked like lately: the box has slid onto
            # a look-alike (the target left or was hidden), so the target is reported LOST and searched for
            confident = cut = False
            self.search.stats.drifts += 1
        if confident:
            self.recovering = None
            self.box, self.state, self.growth, self.low_frames = estimate, TRACKING, 1.0, 0
            self.last_seen = box_center(estimate)
            self.search.reset()
            if cut:
                self.confident_size = estimate[2:].copy()
                self.search.add_template(self._template_at(frame, estimate))
                self._remember_lookalike(frame, first_result, center, side, estimate)
        else:
            # reported LOST at once, but a low score is usually a hard frame (blur, occlusion), not a vanished
            # target: the box keeps following the best candidate (NanoTrack does so always) for lost_patience
            # frames, then holds and the search area widens
            self.state = LOST
            self.low_frames += 1
            if p.lost_patience is None or self.low_frames <= p.lost_patience:
                self.box = estimate
            else:
                self.growth = min(self.growth * 1.25, p.max_search_growth)
                box = clip_box(self.box, w, h, p.min_box_side)
            if p.redetect and self.low_frames > p.redetect_patience:
                found = self.search.step(frame, self.confident_size, self.last_seen)
                if found is not None:
                    self.box = self._bound_size(found.box)
                    self.state, self.growth, self.low_frames, self.recovering, redetected = TRACKING, 1.0, 0, None, True
                    box = clip_box(self.box, w, h, p.min_box_side)
                    answer = Answer(found.box, found.score)
        return TrackResult(box=box, score=answer.score, stages_run=len(scores), state=self.state,
                           inference_ms=(time.perf_counter() - t0) * 1000.0, stage_scores=scores,
                           lost_frames=self.low_frames, redetected=redetected, stage_boxes=boxes)

    def _deep_answer(self, frame: np.ndarray, first: "Answer") -> "Answer":
        """The deep stage on this frame, its search window placed on the first exit's answer (the first exit's work
        recycled: where the target is and how large). Its score is its IoU head's prediction where the stage has
        one (on the first exit's scale), else FEAR-XS's own classification sigmoid."""
        deep = self.deep.run(frame, self._bound_size(first.box))
        score = deep.score
        if self.deep.iou_head is not None:
            h, w = frame.shape[:2]
            seen = lambda b: clip_box(self._bound_size(b), w, h, self.params.min_box_side)
            d, f = seen(deep.box), seen(first.box)
            score = float(self.deep.iou_head.predict(deep_features(
                deep.score, deep.peak_margin, first.score, overlap(d, f), d, f)))
        mode = self.params.deep_answer
        if mode == "fuse":
            return Answer(0.5 * (deep.box + first.box), score)
        if mode == "choose" and score < first.score:     # the first exit is likelier right: it answers
            return Answer(first.box, first.score)
        if mode == "choose" and self.params.deep_identity_check and self.search.memory:
            d, f = self._bound_size(deep.box), self._bound_size(first.box)
            if overlap(d, f) < 0.5 and self._match(self.search.memory[-1], frame, d)[1] < \
                    self._match(self.search.memory[-1], frame, f)[1]:
                return Answer(first.box, first.score)     # not the target the memory knows: the first exit answers
        return Answer(deep.box, score)

    def search_region(self, frame: np.ndarray):
        """This frame's search crop around the state box (converted for the backend), its centre and side in pixels."""
        p = self.params
        center = box_center(self.box)
        side = crop_side(self.box, p.search_factor, p.context_amount) * self.growth
        return self._network_crop(frame, center, side, p.search_size), center, side

    def searching_globally(self) -> bool:
        return self.state == LOST and self.params.redetect and self.low_frames >= self.params.redetect_patience

    def _template_at(self, frame: np.ndarray, box: np.ndarray) -> np.ndarray:
        p = self.params
        side = crop_side(box, p.template_factor, p.context_amount)
        return self._network_crop(frame, box_center(box), side, p.template_size)

    def _network_crop(self, frame: np.ndarray, centre, side: float, size: int) -> np.ndarray:
        """The square crop of `side` pixels around `centre`, resized to `size` and converted for the backend's graphs."""
        return to_network_input(crop_and_resize(frame, centre, side, size, self.fill), self.backend.input_convention)

    def _score_window(self, frame: np.ndarray, centre, size):
        """The first exit on one window of the global search, sized for a target of `size` (w, h): its best box
        anywhere in the window (no motion prior, candidate sizes judged against `size`) and that box's predicted IoU."""
        answer = self._window(frame, centre, size)[0]
        return answer.box, answer.score

    def _window(self, frame: np.ndarray, centre, size):
        """The first exit on a window centred at `centre` sized for a target of `size`: (its answer, its maps)."""
        p = self.params
        side = crop_side((0, 0, size[0], size[1]), p.search_factor, p.context_amount)
        search = self._network_crop(frame, centre, side, p.search_size)
        prior = np.array([centre[0], centre[1], size[0], size[1]])
        result = self.backend.run_stage(0, search)
        return self._decode(result, centre, side, prior=prior, window_influence=0.0, blend_size=False), result

    def _recognised(self, frame: np.ndarray, box: np.ndarray) -> bool:
        """Whether the newest memory template scores the box >= verify_threshold and matches it at its place better
        than the next look-alike template does (True when off or memory empty)."""
        if not (self.params.redetect and self.params.verify_threshold > 0 and self.search.memory):
            return True
        score, here = self._match(self.search.memory[-1], frame, box)
        if score < self.params.verify_threshold:
            return False
        other = self.search.next_lookalike()
        return other is None or self._match(other, frame, box)[1] <= here

    def _match(self, template: np.ndarray, frame: np.ndarray, box: np.ndarray):
        """Another template against a box (the backend's template is swapped and put back): the first exit on a
        window centred on the box, sized for it. Returns (the predicted IoU of its best box anywhere in the window, the
        predicted IoU at the box itself: the best cell within one cell of the window's centre)."""
        self.backend.set_template(template)
        try:
            answer, result = self._window(frame, box_center(box), box[2:])
        finally:
            self.backend.set_template(self.template)
        # the predicted IoU, not the classification score: that one saturates at 1.0 on any person for any person
        here = result.iou_map if result.iou_map is not None else result.score_map
        g = here.shape[-1]
        mid = slice(max(g // 2 - 1, 0), g // 2 + 1 + (g % 2))
        return answer.score, float(np.max(here[mid, mid]))

    def _remember_lookalike(self, frame: np.ndarray, result: StageResult, center, side: float, box: np.ndarray) -> None:
        """The strongest other object of this confident frame's first-exit score map (at least one box size from the
        target, >= lookalike_score) goes into the look-alike memory, cut at the target's size."""
        p = self.params
        if p.lookalike_memory <= 0:
            return
        cx, cy = self._cell_centres(result, center, side)
        bx, by = box_center(box)
        away = (np.abs(cx - bx) >= box[2]) | (np.abs(cy - by) >= box[3])
        scores = np.where(away, result.score_map, -np.inf)
        best = np.unravel_index(int(np.argmax(scores)), scores.shape)
        if scores[best] >= p.lookalike_score:
            other = np.array([cx[best] - box[2] / 2, cy[best] - box[3] / 2, box[2], box[3]])
            self.search.add_lookalike(self._template_at(frame, other))

    def _cell_centres(self, r: StageResult, center, side: float):
        """Every cell's box centre in image pixels (x map, y map): the cell plus its predicted offset, in the square
        crop of `side` pixels around `center`."""
        g = r.score_map.shape[-1]
        if self.window is None or self.window.shape[0] != g:   # per grid size, not per frame
            self.window = np.outer(np.hanning(g), np.hanning(g)).astype(np.float32)
            self.cells = np.mgrid[0:g, 0:g]
        gy, gx = self.cells
        return (center[0] + ((gx + r.offset_map[0]) / g - 0.5) * side,
                center[1] + ((gy + r.offset_map[1]) / g - 0.5) * side)

    def _bound_size(self, box: np.ndarray) -> np.ndarray:
        lo, hi = self.params.size_bounds
        cx, cy = box_center(box)
        bw, bh = np.clip(box[2:], self.init_size * lo, self.init_size * hi)
        return np.array([cx - bw / 2, cy - bh / 2, bw, bh])

    def _decode(self, r: StageResult, center, side: float, prior: Optional[np.ndarray] = None,
                window_influence: Optional[float] = None, blend_size: bool = True) -> "Answer":
        """One exit's answer, decoded as NanoTrack decodes its head: every cell's box, a penalty for candidates
        whose size or aspect differs from the current box's, a cosine window (motion prior) mixed in, the best cell's
        centre, and its size blended into the current size at a rate scaled by its penalised score. The answer's
        score is the exit's predicted IoU *of that cell's box* (the box that is published), where the graph gives
        one per cell (iou_map); older graphs give it for the raw peak only. prior: the box whose size candidates are
        judged against (default: the current box). blend_size False: the cell's own size (a search window's
        candidate has no current size to blend with, only a guess)."""
        p = self.params
        influence = p.window_influence if window_influence is None else window_influence
        cx, cy = self._cell_centres(r, center, side)
        w, h = np.maximum(r.size_map[0] * side, 1e-6), np.maximum(r.size_map[1] * side, 1e-6)
        bw, bh = (self.box if prior is None else prior)[2:4]
        change = lambda x: np.maximum(x, 1.0 / x)
        context = lambda a, b: np.sqrt((a + (a + b) / 2) * (b + (a + b) / 2))
        penalty = np.exp(-p.scale_penalty * (change(context(w, h) / context(bw, bh)) * change((bw / bh) / (w / h)) - 1))
        response = penalty * r.score_map * (1 - influence) + self.window * influence
        best = np.unravel_index(int(np.argmax(response)), response.shape)
        lr = float(penalty[best] * r.score_map[best] * p.size_lr)
        lr = lr if blend_size else 1.0
        nw, nh = (1 - lr) * bw + lr * w[best], (1 - lr) * bh + lr * h[best]
        score = float(r.iou_map[best]) if r.iou_map is not None else r.score
        return Answer(np.array([cx[best] - nw / 2, cy[best] - nh / 2, nw, nh]), score)


@dataclass
class Answer:
    box: np.ndarray   # (x, y, w, h) image pixels, before the size bounds
    score: float      # the exit's predicted IoU of this box
