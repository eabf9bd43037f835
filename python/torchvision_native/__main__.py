"""python -m torchvision_native: what this build is, what this machine needs, and
which kernel path each op takes here."""
import torchvision_native as tvn


def main():
    info = tvn.build_info()
    print(f"torchvision_native {info['version']} (variant {info['variant']}, {info['build_type']}, "
          f"{info['compiler']}, git {info['git_revision'] or '?'})")
    print(f"  CPU ISA tiers built: {', '.join(info['cpu_isas'])}")
    archs = ", ".join(f"sm_{a}" for a in info["cuda_archs"]) or "none"
    print(f"  CUDA targets built: {archs}" + (f" (CUDA {info['cuda_version']})" if info["cuda_version"] else ""))
    print(f"  image codecs: {info.get('jpeg') or 'no JPEG'}, {info.get('png') or 'no PNG'}, "
          f"GPU JPEG: {'nvJPEG' if info.get('nvjpeg') else 'none'}; max image pixels {tvn.io.max_image_pixels()}")
    feats = tvn.cpu_features()
    print(f"this machine: {feats['model'] or feats['arch']}, {feats['logical_cores']} logical cores")
    print(f"  ISA tiers usable here: {', '.join(tvn.available_cpu_isas())}; active: {tvn.active_cpu_isa()}; "
          f"threads: {tvn.num_threads()}")
    variant, reason = tvn.recommended_variant()
    print(f"  recommended variant: {variant} ({reason})")
    print("op paths:")
    print(f"  nms: cpu/{tvn.active_cpu_isa()}" + (f", cuda/{archs}" if info["cuda_archs"] else ""))


if __name__ == "__main__":
    main()
