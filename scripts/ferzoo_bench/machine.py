"""What machine and versions a measurement ran on."""

import os
import platform


def machine():
    """Platform, CPU, versions of ferzoo/Keras/backend, accelerators."""
    import keras

    import ferzoo

    return {
        "platform": platform.platform(),
        "processor": cpu_model(),
        "cpu_count": os.cpu_count(),
        "python": platform.python_version(),
        "ferzoo": ferzoo.__version__,
        "keras": keras.__version__,
        "backend": keras.backend.backend(),
        "backend_version": _backend_version(keras.backend.backend()),
        "accelerators": _accelerators(),
    }


def plain_machine():
    """Platform and CPU only (no Keras import), with the load average."""
    return {
        "platform": platform.platform(),
        "processor": cpu_model(),
        "cpu_count": os.cpu_count(),
        "python": platform.python_version(),
        "load_average": os.getloadavg()[0],
    }


def cpu_model():
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _backend_version(backend):
    try:
        module = __import__(backend)
        return module.__version__
    except Exception:
        return None


def _accelerators():
    import keras

    try:
        if keras.backend.backend() == "jax":
            import jax

            return [str(d) for d in jax.devices() if d.platform != "cpu"]
        import tensorflow as tf

        return [d.name for d in tf.config.list_physical_devices("GPU")]
    except Exception:
        return []
