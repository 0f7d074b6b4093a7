"""Jupyter's kernel conformance suite (jupyter_kernel_test, Debian's python3-jupyter-kernel-test)
run against the batchlab kernel. Every test the suite offers gets a sample here, so none skips.

test/kernel-conformance.test.js runs this with /usr/bin/python3 -m unittest in a sandbox where
the kernelspec "batchlab" is installed (temporary JUPYTER_PATH / JUPYTER_DATA_DIR).
"""
import unittest

import jupyter_kernel_test


class BatchlabKernelTests(jupyter_kernel_test.KernelTests):
    kernel_name = "batchlab"
    language_name = "typescript"
    file_extension = ".ts"

    code_hello_world = 'console.log("hello, world")'
    code_stderr = 'console.error("to stderr")'

    completion_samples = [
        {"text": "Math.flo", "matches": {"floor"}},
        {"text": "const conformanceValue = 1; conformanceVal", "matches": {"conformanceValue"}},
    ]

    complete_code_samples = ["1", "const a = 1;", "function f() { return 1; }", "class C {}"]
    incomplete_code_samples = ["function f() {", "const xs = [1,", "1 +", "const s = `open template"]
    invalid_code_samples = ["const = ;", "let x = ) 1;", "1 +* 2;"]

    # the cells' page(): an execute_reply payload with source "page", as IPython's `?`
    code_page_something = 'page("batchlab pager text")'

    code_generate_error = 'throw new Error("conformance error")'

    code_execute_result = [
        {"code": "6 * 7", "result": "42"},
        {"code": '"ab" + "c"', "result": "'abc'"},
        {"code": "[1, 2].length", "result": "2"},
    ]

    code_display_data = [
        {"code": 'display({ "text/html": "<b>bold</b>", "text/plain": "bold" })', "mime": "text/html"},
        {"code": 'display({ "text/markdown": "*md*", "text/plain": "md" })', "mime": "text/markdown"},
    ]

    # a glob matching exactly one of code_execute_result's codes ("6 * 7")
    code_history_pattern = "6*7"
    supported_history_operations = ("tail", "range", "search")

    code_inspect_sample = "Math.floor"

    code_clear_output = 'console.log("before"); clearOutput()'


if __name__ == "__main__":
    unittest.main()
