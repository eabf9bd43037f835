# The recipe of one tvops variant. packaging/flox/.flox/pkgs/tvops-<variant>.nix, written
# from cmake/variants.json by packaging/gen_packaging.py, calls it with the variant's values:
# the preset <variant> of CMakePresets.json builds the C++ library (lib/libtvops.so, headers,
# CMake package) and packaging/build_wheel.py <variant> the Python package torchvision_native.
{ lib, stdenv, cmake, ninja, python3, xsimd, dlpack
, variant, version, description, platforms
, cudaPackages ? null  # the CUDA package set of a CUDA variant; null for a CPU-only one
}:

let
  cuda = cudaPackages != null;
  mkDerivation = if cuda then cudaPackages.backendStdenv.mkDerivation else stdenv.mkDerivation;
in
mkDerivation {
  pname = "tvops-${variant}";
  inherit version;
  src = lib.cleanSourceWith {
    src = ../..;
    filter = path: type: !(builtins.elem (baseNameOf path) [ "build" "dist" ".venv" ".flox" ]);
  };
  nativeBuildInputs = [ cmake ninja python3 ]
    ++ (with python3.pkgs; [ pip scikit-build-core pybind11 ])
    ++ lib.optionals cuda [ cudaPackages.cuda_nvcc ];
  buildInputs = [ xsimd dlpack python3.pkgs.numpy ]
    ++ lib.optionals cuda [ cudaPackages.cuda_cudart cudaPackages.cuda_cccl ];
  dontUseCmakeConfigure = true;
  buildPhase = ''
    runHook preBuild
    cmake --preset ${variant} -DTVOPS_BUILD_TESTS=OFF -DTVOPS_USE_CCACHE=OFF
    cmake --build build/${variant} -j $NIX_BUILD_CORES
    python3 packaging/build_wheel.py ${variant} --no-repair --jobs $NIX_BUILD_CORES --dist dist
    runHook postBuild
  '';
  installPhase = ''
    runHook preInstall
    cmake --install build/${variant} --prefix $out
    python3 -m pip install --no-deps --no-index --prefix $out dist/*.whl
    runHook postInstall
  '';
  meta = {
    description = "tvops ${variant}: torchvision's operators on native kernels (${description})";
    inherit platforms;
  } // lib.optionalAttrs cuda { license = lib.licenses.unfree; };  # the static CUDA runtime
}
