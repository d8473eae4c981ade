{
  "targets": [
    {
      "target_name": "moebench_native",
      "sources": ["csrc/addon.cc"],
      "cflags_cc": ["-O3", "-std=c++17"],
      "libraries": ["-lopenblas"],
      "defines": ["NAPI_VERSION=8"]
    }
  ]
}
