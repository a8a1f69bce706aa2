% rebase('layout', title='Hello from Bottle on IIS')
<h1>Hello, {{name}}!</h1>
