"""The course's notebooks as assignments: the student edition built from the solution edition, and grading.

The solution edition lives in `notebooks/solutions/NN-name.ipynb` (what CI executes). In
its code cells each exercise's answer sits between two marker lines (the nbgrader
convention)::

    def pairs_for(k):
        ### BEGIN SOLUTION
        return k + 1
        ### END SOLUTION

The student edition `notebooks/NN-name.ipynb` is the same notebook with every such region
replaced, at the marker's indentation, by::

        # YOUR CODE HERE
        raise NotImplementedError()

and all outputs cleared. An exercise is a code cell holding a solution region; its check
is the next code cell, which asserts against the package without printing the answer. In
both editions the two cells carry the tags "exercise" and "check" and nbgrader's cell metadata,
whose grade_id identifies the exercise (`notebooks.assignment`), so grading finds them after the
student has written, moved or copied cells, and nbgrader can generate, validate and autograde.

Three modules: `notebooks` (what an assignment notebook is, reading one safely), `build`
(the student edition) and `grade` (running a notebook with the official checks).

    python -m rnnlm.course build            # (re)write the student edition; idempotent
    python -m rnnlm.course build --check    # exit 1 if the student edition is out of date
    rnnlm check notebooks/03-bptt-and-gradient-checking.ipynb    # grade one notebook

Grading (`grade_notebook`) runs the notebook top to bottom in a fresh kernel and reports,
for each exercise, whether its cell and its check ran without error. The exercises and their
checks are always the solution edition's, matched to the student's cells by id: the notebook's
own check cells are removed and the official ones run instead (`grade.graded_notebook`). Running notebooks needs `nbclient` and `ipykernel`
(the `course` and `dev` extras); building needs only `nbformat`.

Neither destroys nor hangs: `build` refuses a student folder that is the solutions folder or
lies inside it, and student notebooks that are links to solutions or special files, then
writes each notebook atomically; grading refuses a FIFO or a file that is not a notebook in
one line, and a cell that kills the kernel or runs out of time fails its exercise (a fresh kernel
reruns the cells before it, and grading goes on after it).
"""
