# Evaluates every recipe (nix-instantiate --eval --strict --json --arg root <repo>) against a
# stand-in of nixpkgs: each must call packaging/nix/tvops.nix with its variant and give a
# derivation whose build runs that preset (tests/packaging/test_select.py checks the values).
{ root }:
let
  lib = {
    optionals = c: l: if c then l else [ ];
    optionalAttrs = c: a: if c then a else { };
    cleanSourceWith = a: a;
    licenses.unfree = "unfree";
  };
  mkDerivation = attrs: attrs;
  cuda = { backendStdenv.mkDerivation = a: a // { cuda = true; }; cuda_nvcc = "nvcc"; cuda_cudart = "cudart"; cuda_cccl = "cccl"; };
  pkgs = {
    inherit lib; stdenv.mkDerivation = mkDerivation; cmake = "cmake"; ninja = "ninja"; xsimd = "xsimd"; dlpack = "dlpack";
    python3.pkgs = { pip = "pip"; scikit-build-core = "skb"; pybind11 = "pybind11"; numpy = "numpy"; };
    cudaPackages = cuda; cudaPackages_13 = cuda;
  };
  callPackage = f: args: let fn = if builtins.isFunction f then f else import f; in
    fn (builtins.intersectAttrs (builtins.functionArgs fn) (pkgs // { inherit callPackage; }) // args);
  variants = import (root + "/packaging/nix/default.nix") { pkgs = pkgs // { inherit callPackage; }; };
in builtins.mapAttrs (name: d: { inherit (d) pname; cuda = d.cuda or false; preset = builtins.match ".*cmake --preset ([^ ]+) .*" d.buildPhase; platforms = d.meta.platforms; }) variants
