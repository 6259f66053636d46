"""Write predict's face nets beside an ONNX / LiteRT export.

`ferzoo-predict --runtime onnx|litert` finds faces with face-api's SSD
MobileNet v1 (`ferzoo.predict.nets.SSDMobileNetV1FaceDetector`, preset
`ssd_mobilenetv1_face`) and aligns them with its 68-point landmark net
(`FaceLandmark68Net`, preset `face_landmark68_net`), the same nets as on
Keras. Each is written in the export's format beside the classifier
(`FACE_NET_FILES`), raw net outputs only: the NumPy pre- and
post-processing (padding and resize, anchors' NMS, landmark crops) is
`ferzoo.predict.detect` / `ferzoo.predict.align`'s on every runtime.

- `detector.onnx` / `detector.tflite`: float32 `(batch, 512, 512, 3)`
  pixels 0-255 -> `(batch, 5118, 5)`: the decoded boxes `(ymin, xmin,
  ymax, xmax)` relative to the input, then the face score, per anchor
  (the Keras net's `boxes` and `scores`, one tensor: the runtimes
  return outputs in no guaranteed order).
- `landmarks.onnx` / `landmarks.tflite`: float32 `(batch, 112, 112, 3)`
  -> `(batch, 68, 2)` points relative to the crop.
"""

import tensorflow as tf

from ferzoo.deploy.common import FACE_NET_FILES
from ferzoo.version import __version__

PRESETS = {
    "detector": "ssd_mobilenetv1_face",
    "landmarks": "face_landmark68_net",
}
INPUT_SIZES = {"detector": 512, "landmarks": 112}
DESCRIPTIONS = {
    "detector": "face-api's SSD MobileNet v1 face detector: float32 pixels "
    "(batch, 512, 512, 3) 0-255 -> (batch, 5118, 5): boxes (ymin, xmin, "
    "ymax, xmax) relative, face score",
    "landmarks": "face-api's 68-point landmark net: float32 pixels "
    "(batch, 112, 112, 3) 0-255 -> (batch, 68, 2) points relative",
}


def net_function(kind):
    """`tf.function` of the face net `kind` on Keras' TensorFlow backend."""
    from ferzoo.predict import nets

    size = INPUT_SIZES[kind]
    spec = tf.TensorSpec((None, size, size, 3), tf.float32, "images")
    if kind == "detector":
        net = nets.SSDMobileNetV1FaceDetector.from_preset(PRESETS[kind])

        @tf.function(input_signature=[spec])
        def detector(images):
            out = net(images, training=False)
            scores = out["scores"][..., None]
            return {"detections": tf.concat([out["boxes"], scores], -1)}

        return detector
    net = nets.FaceLandmark68Net.from_preset(PRESETS[kind])

    @tf.function(input_signature=[spec])
    def landmarks(images):
        return {"points": net(images, training=False)}

    return landmarks


def write_face_nets(folder, fmt, verbose=False):
    """Write the detector and landmark nets into `folder` in `fmt`.

    Returns `{kind: path}` of the files written.
    """
    out = {}
    for kind, filename in FACE_NET_FILES[fmt].items():
        function = net_function(kind)
        meta = {
            "ferzoo_version": __version__,
            "net": kind,
            "preset": PRESETS[kind],
            "description": DESCRIPTIONS[kind],
        }
        if fmt == "onnx":
            from ferzoo.deploy import onnx

            out[kind] = onnx.write_onnx(
                function, folder, meta, verbose, filename
            )
        else:
            from ferzoo.deploy import litert

            out[kind] = litert.write_litert(
                function, folder, meta, verbose, filename
            )
    return out
