//! `rpb_native`: the rpb-bench kernels called from Python (PyO3 + rust-numpy).
//!
//! Arrays are borrowed, never copied: a read-only view of the NumPy buffer, with the GIL
//! released around the Rust loop. An argument of the wrong type, dtype or shape raises
//! `TypeError`; an array that is not C-contiguous raises `ValueError` (the caller decides whether
//! to pay for `np.ascontiguousarray`).

use numpy::{
    Element, IntoPyArray, PyArray1, PyArray2, PyArrayDyn, PyArrayMethods, PyReadonlyArray,
    PyUntypedArray, PyUntypedArrayMethods,
};
use pyo3::exceptions::{PyOverflowError, PyTypeError, PyValueError};
use pyo3::prelude::*;

use rpb_bench::batch_scoring as bs;
use rpb_bench::drift;
use rpb_bench::sum_squares as ss;

/// Describes what was passed, for error messages: dtype and shape of an array, else its type.
fn describe(obj: &Bound<'_, PyAny>) -> String {
    if let Ok(a) = obj.cast::<PyUntypedArray>() {
        format!(
            "an array of dtype {} and shape {}",
            a.dtype(),
            py_shape(a.shape())
        )
    } else {
        match obj.get_type().qualname() {
            Ok(name) => format!("an object of type {name}"),
            Err(_) => "an object of unknown type".into(),
        }
    }
}

/// A shape as Python prints it: (5,) or (5, 32).
fn py_shape(shape: &[usize]) -> String {
    match shape {
        [one] => format!("({one},)"),
        _ => format!(
            "({})",
            shape
                .iter()
                .map(usize::to_string)
                .collect::<Vec<_>>()
                .join(", ")
        ),
    }
}

/// A read-only view of `obj` as a C-contiguous `ndim`-D array of `T` (`dtype` names T).
fn c_view<'py, T: Element>(
    func: &str,
    arg: &str,
    obj: &Bound<'py, PyAny>,
    ndim: usize,
    dtype: &str,
) -> PyResult<PyReadonlyArray<'py, T, numpy::IxDyn>> {
    let wrong_type = || {
        PyTypeError::new_err(format!(
            "{func}: {arg} must be a {ndim}-D numpy array of {dtype}, got {}",
            describe(obj)
        ))
    };
    let array = obj.cast::<PyArrayDyn<T>>().map_err(|_| wrong_type())?;
    if array.ndim() != ndim {
        return Err(wrong_type());
    }
    if !array.is_c_contiguous() {
        return Err(PyValueError::new_err(format!(
            "{func}: {arg} must be C-contiguous (got a strided or Fortran-ordered view of shape \
             {}); pass np.ascontiguousarray({arg})",
            py_shape(array.shape())
        )));
    }
    array
        .try_readonly()
        .map_err(|e| PyValueError::new_err(format!("{func}: cannot borrow {arg} read-only: {e}")))
}

/// The buffer of a C-contiguous view (the check above makes this infallible).
fn slice<'a, T: Element>(a: &'a PyReadonlyArray<'_, T, numpy::IxDyn>) -> PyResult<&'a [T]> {
    a.as_slice()
        .map_err(|e| PyValueError::new_err(format!("array is not contiguous: {e}")))
}

/// Does nothing: the cost of a call from Python into Rust.
#[pyfunction]
fn noop() {}

/// a + b for 64-bit integers (OverflowError outside the i64 range).
#[pyfunction]
fn add(a: i64, b: i64) -> PyResult<i64> {
    a.checked_add(b).ok_or_else(|| {
        PyOverflowError::new_err("add: the sum does not fit in a signed 64-bit integer")
    })
}

/// Sum of x*x over a 1-D int64 array, read in place with the GIL released. Exact for the
/// task's values (|x| < 2^14, fewer than 2^35 of them); larger values wrap around.
#[pyfunction]
fn sum_squares(py: Python<'_>, a: &Bound<'_, PyAny>) -> PyResult<i64> {
    let view = c_view::<i64>("sum_squares", "a", a, 1, "int64")?;
    let data = slice(&view)?;
    Ok(py.detach(|| ss::iter(data)))
}

/// The batch_scoring logistic score of one row of 32 floats (any sequence of numbers).
#[pyfunction]
fn logistic_score(x: Vec<f64>) -> PyResult<f64> {
    if x.len() != bs::FEATURES {
        return Err(PyValueError::new_err(format!(
            "logistic_score: x must have {} values, got {}",
            bs::FEATURES,
            x.len()
        )));
    }
    Ok(bs::score_row(bs::weights_cached(), &x))
}

/// Logistic scores of every row of a C-contiguous float64 array of shape (n, 32): a new 1-D
/// array of n scores, computed with the GIL released.
#[pyfunction]
fn batch_scores<'py>(
    py: Python<'py>,
    x: &Bound<'py, PyAny>,
) -> PyResult<Bound<'py, PyArray1<f64>>> {
    let view = c_view::<f64>("batch_scores", "x", x, 2, "float64")?;
    let shape = view.shape().to_vec();
    if shape[1] != bs::FEATURES {
        return Err(PyValueError::new_err(format!(
            "batch_scores: x must have {} columns, got shape {}",
            bs::FEATURES,
            py_shape(&shape)
        )));
    }
    let data = slice(&view)?;
    let scores = py.detach(|| {
        let mut out = vec![0.0; shape[0]];
        bs::score_into(data, &mut out);
        out
    });
    Ok(scores.into_pyarray(py))
}

/// A fitted drift reference: per feature the sorted reference sample, its decile edges and bin
/// proportions. `DriftReference(reference)` fits a C-contiguous float64 array of shape
/// (features, n_ref); `score(current)` returns a (features, 4) array of PSI, KS, W1, JS.
#[pyclass(frozen, module = "rpb_native")]
struct DriftReference {
    fitted: drift::Reference,
}

#[pymethods]
impl DriftReference {
    #[new]
    fn new(py: Python<'_>, reference: &Bound<'_, PyAny>) -> PyResult<Self> {
        let view = c_view::<f64>("DriftReference", "reference", reference, 2, "float64")?;
        let n = view.shape()[1];
        if n == 0 || view.shape()[0] == 0 {
            return Err(PyValueError::new_err("DriftReference: reference is empty"));
        }
        let data = slice(&view)?;
        let fitted = py.detach(|| drift::Reference::fit(data, n));
        Ok(DriftReference { fitted })
    }

    /// Number of features.
    #[getter]
    fn features(&self) -> usize {
        self.fitted.features.len()
    }

    /// Scores a current sample of shape (features, n_cur): a (features, 4) array of PSI, KS,
    /// W1, JS.
    fn score<'py>(
        &self,
        py: Python<'py>,
        current: &Bound<'py, PyAny>,
    ) -> PyResult<Bound<'py, PyArray2<f64>>> {
        let view = c_view::<f64>("DriftReference.score", "current", current, 2, "float64")?;
        let (f, n) = (view.shape()[0], view.shape()[1]);
        if f != self.fitted.features.len() || n == 0 {
            return Err(PyValueError::new_err(format!(
                "DriftReference.score: current must have shape ({}, n) with n > 0, got ({f}, {n})",
                self.fitted.features.len()
            )));
        }
        let data = slice(&view)?;
        let flat: Vec<f64> = py.detach(|| {
            self.fitted
                .score(data, n)
                .iter()
                .flat_map(drift::Metrics::as_array)
                .collect()
        });
        flat.into_pyarray(py).reshape([f, 4])
    }
}

#[pymodule]
fn rpb_native(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(noop, m)?)?;
    m.add_function(wrap_pyfunction!(add, m)?)?;
    m.add_function(wrap_pyfunction!(sum_squares, m)?)?;
    m.add_function(wrap_pyfunction!(logistic_score, m)?)?;
    m.add_function(wrap_pyfunction!(batch_scores, m)?)?;
    m.add_class::<DriftReference>()?;
    m.add("FEATURES", bs::FEATURES)?;
    Ok(())
}
