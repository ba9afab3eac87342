/**
 * Icon artwork from Debian's icon themes as 28x28 grey images: one image per (theme, icon name),
 * from the smallest raster size of at least 48 px (else the largest of at least 24 px), alpha
 * flattened onto black, ITU-R 601 luma, Pillow-exact resize. Symbolic (monochrome UI) icons are
 * left out, as are images that come out near-constant (pixel std below 8) and exact duplicates.
 */
import { existsSync, readdirSync, realpathSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';
import sharp from 'sharp';
import { DataError } from './errors.ts';
import { type CacheOptions, cachedSet, inputsKey, lumaOnBlack, OOD_SIDE, type OfflineSet, pixelStd, toSide28 } from './offline-sets.ts';

/** Theme folders under the icon root and the Debian package that installs each. */
export const ICON_THEMES: readonly { dir: string; pkg: string }[] = [
  { dir: 'Adwaita', pkg: 'adwaita-icon-theme' },
  { dir: 'Tango', pkg: 'tango-icon-theme' },
  { dir: 'gnome', pkg: 'gnome-icon-theme' },
];

export interface IconImageOptions extends CacheOptions {
  /** Icon root (default /usr/share/icons) holding the theme folders of ICON_THEMES. */
  root?: string;
}

const MIN_STD = 8;
const PREFERRED_MIN = 48;
const SMALLEST = 24;

function walkPngs(dir: string, out: string[]): void {
  for (const e of readdirSync(dir, { withFileTypes: true }).sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0))) {
    const p = join(dir, e.name);
    if (e.isDirectory()) walkPngs(p, out);
    else if ((e.isFile() || e.isSymbolicLink()) && e.name.endsWith('.png') && !e.name.includes('symbolic')) out.push(p);
  }
}

/** The chosen file per (theme, icon name), in theme then name order; aliases (links to one file) once. */
export function iconFiles(root: string): string[] {
  const chosen: string[] = [];
  const seen = new Set<string>();
  for (const { dir } of ICON_THEMES) {
    const theme = join(root, dir);
    if (!existsSync(theme)) continue;
    const best = new Map<string, { size: number; path: string }>();
    for (const sizeDir of readdirSync(theme).sort()) {
      const m = /^(\d+)x(\d+)$/.exec(sizeDir);
      if (m === null || m[1] !== m[2] || Number(m[1]) < SMALLEST) continue;
      const size = Number(m[1]);
      const files: string[] = [];
      walkPngs(join(theme, sizeDir), files);
      for (const f of files) {
        const name = relative(join(theme, sizeDir), f).split('/').pop()!.replace(/\.png$/, '');
        const cur = best.get(name);
        const better = cur === undefined || (size >= PREFERRED_MIN ? cur.size < PREFERRED_MIN || size < cur.size : cur.size < PREFERRED_MIN && size > cur.size);
        if (better) best.set(name, { size, path: f });
      }
    }
    for (const name of [...best.keys()].sort()) {
      const path = best.get(name)!.path;
      let real: string;
      try {
        real = realpathSync(path);
        if (!statSync(real).isFile()) continue;
      } catch {
        continue;
      }
      if (seen.has(real)) continue;
      seen.add(real);
      chosen.push(real);
    }
  }
  return chosen;
}

async function iconToGrey(file: string): Promise<Uint8Array | null> {
  try {
    const { data, info } = await sharp(file).raw().toBuffer({ resolveWithObject: true });
    return toSide28(lumaOnBlack(new Uint8Array(data.buffer, data.byteOffset, data.length), info.width, info.height, info.channels), info.width, info.height);
  } catch {
    return null;
  }
}

/** Icon images from the themes under `root` (see ICON_THEMES); cached as .npz in the data folder. */
export async function buildIconImages(opts: IconImageOptions = {}): Promise<OfflineSet> {
  const root = opts.root ?? '/usr/share/icons';
  const files = iconFiles(root);
  const packages = ICON_THEMES.map((t) => t.pkg);
  if (files.length === 0) {
    throw new DataError(`no icon images under ${ICON_THEMES.map((t) => t.dir).join(', ')}: install the Debian packages ${packages.join(' ')} (apt-get install ${packages.join(' ')})`, root);
  }
  const key = await inputsKey({ v: 1, MIN_STD, PREFERRED_MIN, SMALLEST }, files);
  return cachedSet('icons', key, opts, async () => {
    const grey: (Uint8Array | null)[] = new Array(files.length).fill(null);
    const workers = 8;
    await Promise.all(
      Array.from({ length: workers }, async (_, w) => {
        for (let i = w; i < files.length; i += workers) grey[i] = await iconToGrey(files[i]!);
      }),
    );
    const kept: Uint8Array[] = [];
    const hashes = new Set<string>();
    const themes = new Set<string>();
    grey.forEach((img, i) => {
      if (img === null || pixelStd(img) < MIN_STD) return;
      const h = Buffer.from(img).toString('base64');
      if (hashes.has(h)) return;
      hashes.add(h);
      kept.push(img);
      themes.add(relative(root, files[i]!).split('/')[0]!);
    });
    const images = new Uint8Array(kept.length * OOD_SIDE * OOD_SIDE);
    kept.forEach((img, k) => images.set(img, k * OOD_SIDE * OOD_SIDE));
    return {
      images,
      info: {
        name: 'icons',
        kind: 'real',
        description: `${kept.length} icons (of ${files.length} files) from the ${[...themes].join(', ')} icon themes, alpha onto black, luma, resized to 28x28`,
        count: kept.length,
        packages,
        inputs: [...themes].map((t) => join(root, t)),
      },
    };
  });
}
