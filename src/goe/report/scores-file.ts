/**
 * Every per-sample score of one evaluated model in one `scores.npz` (numpy's np.savez layout), so
 * `goe metrics` and the user's own tools recompute every reported number.
 *
 * Members (1-D, one value per sample, in the set's order):
 *   `in__<Detector>`        in-distribution test scores (outlier scores: higher = more OOD)
 *   `<set>__<Detector>`     each OOD test set's scores; `<set>` is the set's name slugged
 *                           (lower case, runs of other characters than a-z 0-9 replaced by "-")
 *   `in__label`, `in__prediction`   int32 labels and argmax classes, when the set is labelled
 * Scores are float32 when every value survives the round trip (the engine's scores are float32,
 * so always for its own runs), float64 otherwise: the saved file never merges two distinct scores.
 * `scores.npz.json` beside it maps each member back to its set and detector names.
 *
 *   goe metrics --in scores.npz:in__MSP --out scores.npz:svhn__MSP
 *   python: s = np.load("scores.npz"); s["in__MSP"], s["svhn__MSP"]
 */
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { NpzFile } from '../../data/index.ts';
import { saveNpz, type NpyArrayIn } from '../../engine/index.ts';
import type { NamedScores, RunScores } from '../train/evaluate.ts';

/** The member name standing for the in-distribution set. */
export const IN_DISTRIBUTION_KEY = 'in';
const SEPARATOR = '__';

/** A set name as it appears in member names: "LSUN (resize)" -> "lsun-resize". */
export function setSlug(name: string): string {
  const slug = name.toLowerCase().replace(/[^a-z0-9]+/g, '-').replace(/^-+|-+$/g, '');
  return slug === '' ? 'set' : slug;
}

/** The member holding one set's scores of one detector. */
export function scoreKey(setKey: string, detector: string): string {
  return `${setKey}${SEPARATOR}${detector}`;
}

export interface ScoresIndexEntry {
  key: string;
  set: string;
  role: 'in' | 'ood';
  /** Detector name, or "label" / "prediction". */
  detector: string;
  n: number;
}

/** What scores.npz.json holds. */
export interface ScoresIndex {
  detectors: string[];
  in: { name: string; key: string };
  ood: { name: string; key: string }[];
  members: ScoresIndexEntry[];
}

function scoreArray(values: ArrayLike<number>): Float32Array | Float64Array {
  const f32 = Float32Array.from(values);
  for (let i = 0; i < values.length; i++) if (f32[i] !== values[i]) return Float64Array.from(values);
  return f32;
}

/** The arrays of scores.npz and its index. Throws when two OOD set names slug to one key. */
export function scoresNpzArrays(run: RunScores): { arrays: Record<string, NpyArrayIn>; index: ScoresIndex } {
  const oodKeys = run.ood.map((s) => setSlug(s.name));
  const seen = new Map<string, string>([[IN_DISTRIBUTION_KEY, run.in.name]]);
  run.ood.forEach((s, i) => {
    const other = seen.get(oodKeys[i]!);
    if (other !== undefined) throw new Error(`scores.npz: OOD set "${s.name}" and "${other}" both map to the member prefix "${oodKeys[i]}"; rename one`);
    seen.set(oodKeys[i]!, s.name);
  });
  const arrays: Record<string, NpyArrayIn> = {};
  const members: ScoresIndexEntry[] = [];
  const add = (set: NamedScores, setKey: string, role: 'in' | 'ood', detector: string, data: Float32Array | Float64Array | Int32Array): void => {
    const key = scoreKey(setKey, detector);
    arrays[key] = { data, shape: [data.length] };
    members.push({ key, set: set.name, role, detector, n: data.length });
  };
  const sets: [NamedScores, string, 'in' | 'ood'][] = [[run.in, IN_DISTRIBUTION_KEY, 'in'], ...run.ood.map((s, i): [NamedScores, string, 'ood'] => [s, oodKeys[i]!, 'ood'])];
  for (const [set, key, role] of sets) {
    for (const d of run.detectors) {
      const values = set.scores[d];
      if (values === undefined) throw new Error(`scores.npz: set "${set.name}" has no ${d} scores`);
      add(set, key, role, d, scoreArray(values));
    }
  }
  if (run.in.labels !== undefined && run.in.predictions !== undefined) {
    add(run.in, IN_DISTRIBUTION_KEY, 'in', 'label', run.in.labels);
    add(run.in, IN_DISTRIBUTION_KEY, 'in', 'prediction', run.in.predictions);
  }
  const index: ScoresIndex = {
    detectors: [...run.detectors],
    in: { name: run.in.name, key: IN_DISTRIBUTION_KEY },
    ood: run.ood.map((s, i) => ({ name: s.name, key: oodKeys[i]! })),
    members,
  };
  return { arrays, index };
}

/** Writes `path` (an .npz) and `path.json` (its index); returns the index. */
export async function writeScoresNpz(path: string, run: RunScores): Promise<ScoresIndex> {
  const { arrays, index } = scoresNpzArrays(run);
  await saveNpz(path, arrays);
  writeFileSync(`${path}.json`, JSON.stringify(index, null, 2) + '\n');
  return index;
}

/**
 * Reads a scores.npz back as RunScores (set names from its index file when present, else the
 * member prefixes), so a resumed run redraws its figures and recomputes its metrics.
 */
export async function readScoresNpz(path: string, index?: ScoresIndex): Promise<RunScores> {
  const npz = await NpzFile.open(path);
  const read = async (key: string): Promise<ArrayLike<number>> => (await npz.array(key)).data as Float32Array | Float64Array | Int32Array;
  const idx = index ?? (existsSync(`${path}.json`) ? (JSON.parse(readFileSync(`${path}.json`, 'utf8')) as ScoresIndex) : indexFromKeys(npz.keys));
  const named = async (name: string, key: string): Promise<NamedScores> => {
    const scores: Record<string, ArrayLike<number>> = {};
    for (const d of idx.detectors) scores[d] = await read(scoreKey(key, d));
    return { name, scores };
  };
  const inScores = await named(idx.in.name, idx.in.key);
  if (npz.keys.includes(scoreKey(IN_DISTRIBUTION_KEY, 'label')) && npz.keys.includes(scoreKey(IN_DISTRIBUTION_KEY, 'prediction'))) {
    inScores.labels = Int32Array.from(await read(scoreKey(IN_DISTRIBUTION_KEY, 'label')));
    inScores.predictions = Int32Array.from(await read(scoreKey(IN_DISTRIBUTION_KEY, 'prediction')));
  }
  const ood: NamedScores[] = [];
  for (const s of idx.ood) ood.push(await named(s.name, s.key));
  return { detectors: idx.detectors, in: inScores, ood };
}

function indexFromKeys(keys: readonly string[]): ScoresIndex {
  const parts = keys.map((k) => [k.slice(0, k.indexOf(SEPARATOR)), k.slice(k.indexOf(SEPARATOR) + SEPARATOR.length)] as const);
  const detectors = [...new Set(parts.filter(([s, d]) => s === IN_DISTRIBUTION_KEY && d !== 'label' && d !== 'prediction').map(([, d]) => d))];
  const sets = [...new Set(parts.map(([s]) => s).filter((s) => s !== IN_DISTRIBUTION_KEY))];
  return { detectors, in: { name: IN_DISTRIBUTION_KEY, key: IN_DISTRIBUTION_KEY }, ood: sets.map((s) => ({ name: s, key: s })), members: [] };
}
