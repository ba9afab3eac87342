/**
 * The imagenet experiment's test fixture: a small class-folder tree of real-looking images
 * (textured PNGs of varied sizes, made here), laid out as ImageNet's train and val splits and
 * extracted ImageNet-A/-R/-O trees, and the options that point `goe experiment imagenet` at it.
 */
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import sharp from 'sharp';
import type { CliIo } from '../../src/cli/subcommand.ts';

/** A class-coloured texture: stripes at a class-specific angle and frequency, with seeded grain. */
export async function texture(path: string, cls: number, i: number, w: number, h: number): Promise<void> {
  const px = Buffer.alloc(w * h * 3);
  let s = (cls * 7919 + i * 104729) >>> 0;
  const angle = 0.7 * cls + 0.3;
  const freq = 0.15 + 0.05 * cls;
  const base = [(cls * 97) % 256, (cls * 57 + 80) % 256, (cls * 131 + 40) % 256];
  for (let y = 0; y < h; y++) {
    for (let x = 0; x < w; x++) {
      s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
      const wave = Math.sin((x * Math.cos(angle) + y * Math.sin(angle)) * freq + i);
      for (let k = 0; k < 3; k++) px[(y * w + x) * 3 + k] = Math.max(0, Math.min(255, Math.round(base[k]! + 70 * wave + ((s >>> 24) - 128) * 0.3)));
    }
  }
  await sharp(px, { raw: { width: w, height: h, channels: 3 } }).png().toFile(path);
}

/** `perClass` textures in each class folder of `root` (sizes vary by class and index). */
export async function imageTree(root: string, classes: string[], perClass: number, seed: number): Promise<void> {
  for (const [c, name] of classes.entries()) {
    mkdirSync(join(root, name), { recursive: true });
    for (let i = 0; i < perClass; i++) await texture(join(root, name, `img${i}.png`), c + seed, i, 72 + 8 * c, 60 + 4 * i);
  }
}

export interface ImageNetTree {
  train: string;
  val: string;
  a: string;
  r: string;
  o: string;
}

/** Train (3 classes x 8), val (3 x 3), ImageNet-A (4), -R (2 classes x 2), -O (4) under `root`. */
export async function makeImageNetTree(root: string): Promise<ImageNetTree> {
  const wnids = ['n01440764', 'n01443537', 'n01484850'];
  const t: ImageNetTree = {
    train: join(root, 'data', 'imagenet', 'train'), val: join(root, 'data', 'imagenet', 'val'),
    a: join(root, 'ood', 'imagenet-a'), r: join(root, 'ood', 'imagenet-r'), o: join(root, 'ood', 'imagenet-o'),
  };
  await imageTree(t.train, wnids, 8, 0);
  await imageTree(t.val, wnids, 3, 0);
  await imageTree(t.a, ['n01498041'], 4, 5);
  await imageTree(t.r, ['n01514859', 'n01518878'], 2, 7);
  await imageTree(t.o, ['n01531178'], 4, 11);
  return t;
}

/** The data options of a run on the fixture (no download). */
export function treeArgs(t: ImageNetTree): string[] {
  return ['--imagenet-train', t.train, '--imagenet-val', t.val, '--imagenet-a', t.a, '--imagenet-r', t.r, '--imagenet-o', t.o];
}

/** A CliIo that keeps what a command printed, for the imagenet CLI tests. */
export function capture(): CliIo & { out: string[]; err: string[] } {
  const out: string[] = [];
  const err: string[] = [];
  return { out, err, stdout: (t) => void out.push(t), stderr: (t) => void err.push(t) };
}
