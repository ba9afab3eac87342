/**
 * `goe convert IN OUT.safetensors [--map NAME]`: a PyTorch state dict (torch.save's .pth / .pt /
 * .bin, zip or legacy layout) read as tensors only through the safe unpickler (no code runs), or
 * a safetensors file in another layout (timm's model.safetensors), its keys mapped to this project's models, written as safetensors that `--pretrained` /
 * `loadModel` read. Floating tensors are written as F32 (the engine computes in f32), integer
 * ones as I32, bool / uint8 as U8. Anything that is not a state dict of tensors exits 2 with one
 * line saying what the file holds.
 */
import { parseArgs } from 'node:util';
import { existsSync, statSync } from 'node:fs';
import { basename } from 'node:path';
import { writeFileAtomic, serializeSafetensors, loadSafetensorsFile, SafetensorsError, type WritableTensor, type SafeTensor } from '../engine/index.ts';
import { DataError } from '../data/errors.ts';
import { readTorchStateDict } from '../data/torch-checkpoint.ts';
import { CHECKPOINT_MAPS, KeyMapError, type MapTensor } from '../models/checkpoint-maps.ts';
import { EXIT_OK, EXIT_USAGE, UsageError, type CliIo, type Subcommand } from './subcommand.ts';

const USAGE = `Usage: goe convert IN OUT.safetensors [--map NAME]

Reads a PyTorch state dict saved by torch.save (.pth, .pt, .bin; zip or legacy layout) without
running any code from it, or a .safetensors file in another model's layout (timm's
model.safetensors), maps its keys and writes a safetensors file for --pretrained / loadModel.
A dict wrapping the state dict under 'state_dict' or 'model' is unwrapped; a 'module.' prefix on
every key (nn.DataParallel) is removed.

  --map NAME    how the keys are renamed (default none):
${Object.entries(CHECKPOINT_MAPS).map(([k, v]) => `                  ${k.padEnd(20)}${v.summary}`).join('\n')}
  -h, --help    show this help

Checkpoints the paper's ImageNet experiment uses:
  torchvision ViT-B/16   vit_b_16-c867db91.pth                       --map torchvision-vit
  timm ViT-B/16          vit_base_patch16_224 pytorch_model.bin      --map timm-vit
  pytorch-ood ViT-B/16   imagenet21k+imagenet2012_ViT-B_16-224.pth   --map pytorch-ood-vit
  torchvision ResNet-101 resnet101-63fe2227.pth                      --map torchvision-resnet
  BigGAN-deep-128 port   biggan-deep-128-pytorch_model.bin           --map biggan-port
`;

/** A safetensors file in another layout (timm's model.safetensors): its tensors, for the key maps. */
async function readSafetensorsState(path: string): Promise<{ tensors: Map<string, MapTensor>; layout: 'safetensors'; notes: string[] }> {
  const file = await loadSafetensorsFile(path, { decodeHalf: true });
  const host = (name: string, t: SafeTensor): MapTensor => {
    const d = t.data;
    if (d instanceof Float32Array || d instanceof Int32Array || d instanceof Uint8Array) return { shape: t.shape, data: d };
    if (d instanceof Float64Array) return { shape: t.shape, data: Float32Array.from(d) };
    if (d instanceof BigInt64Array) {
      if (d.some((v) => v > 2147483647n || v < -2147483648n)) throw new KeyMapError(`${name}: int64 values do not fit the engine's int32`);
      return { shape: t.shape, data: Int32Array.from(d, Number) };
    }
    return { shape: t.shape, data: Int32Array.from(d as Uint32Array) };
  };
  let tensors = new Map([...file.tensors].map(([k, t]) => [k, host(k, t)]));
  const notes: string[] = [];
  if (tensors.size > 0 && [...tensors.keys()].every((k) => k.startsWith('module.'))) {
    tensors = new Map([...tensors].map(([k, v]) => [k.slice('module.'.length), v]));
    notes.push("the 'module.' prefix of nn.DataParallel removed");
  }
  return { tensors, layout: 'safetensors', notes };
}

interface ConvertArgs {
  input: string;
  output: string;
  map: string;
}

function parse(args: string[]): ConvertArgs | null {
  let parsed;
  try {
    parsed = parseArgs({ args, strict: true, allowPositionals: true, options: { map: { type: 'string', default: 'none' }, help: { type: 'boolean', short: 'h', default: false } } });
  } catch (e) {
    throw new UsageError((e as Error).message);
  }
  const { values, positionals } = parsed;
  if (values.help) return null;
  if (positionals.length !== 2) throw new UsageError(`expected IN and OUT.safetensors, got ${positionals.length} argument(s)`);
  const [input, output] = positionals as [string, string];
  if (!Object.hasOwn(CHECKPOINT_MAPS, values.map)) throw new UsageError(`--map must be one of ${Object.keys(CHECKPOINT_MAPS).join(', ')}, not "${values.map}"`);
  if (!output.endsWith('.safetensors')) throw new UsageError(`OUT must end in .safetensors, got ${output}`);
  return { input, output, map: values.map };
}

export async function convertMain(args: string[], io: CliIo): Promise<number> {
  const a = parse(args);
  if (a === null) {
    io.stdout(USAGE);
    return EXIT_OK;
  }
  const fail = (m: string): number => {
    io.stderr(`goe convert: error: ${m.split('\n')[0]}\n`);
    return EXIT_USAGE;
  };
  if (!existsSync(a.input) || !statSync(a.input).isFile()) return fail(`${a.input} does not exist or is not a file`);
  let state: Map<string, MapTensor>;
  let notes: string[];
  let layout: string;
  try {
    const sd = a.input.endsWith('.safetensors') ? await readSafetensorsState(a.input) : await readTorchStateDict(a.input);
    layout = sd.layout;
    notes = sd.notes;
    state = CHECKPOINT_MAPS[a.map]!.map(sd.tensors);
  } catch (e) {
    if (e instanceof DataError || e instanceof KeyMapError || e instanceof SafetensorsError) return fail(e.message);
    throw e;
  }
  const tensors = new Map<string, WritableTensor>();
  let elements = 0;
  for (const [k, t] of state) {
    tensors.set(k, { shape: t.shape, data: t.data });
    elements += t.data.length;
  }
  const meta = { source: basename(a.input), map: a.map, converted_by: 'goe convert' };
  try {
    await writeFileAtomic(a.output, serializeSafetensors(tensors, meta));
  } catch (e) {
    return fail(`cannot write ${a.output}: ${(e as Error).message}`);
  }
  const extra = notes.length > 0 ? `; ${notes.join('; ')}` : '';
  io.stdout(`wrote ${a.output}: ${tensors.size} tensors, ${elements.toLocaleString('en-US')} values (${layout} checkpoint ${a.input}, --map ${a.map}${extra})\n`);
  return EXIT_OK;
}

export const convertCommand: Subcommand = {
  name: 'convert',
  summary: 'a PyTorch state dict (.pth/.pt/.bin) to safetensors, keys mapped for the models here (no code from the file runs)',
  usage: USAGE,
  run: convertMain,
};
