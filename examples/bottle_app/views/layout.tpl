<!doctype html>
<title>{{title}}</title>
{{!base}}
